"""Group policies: which answers of a prompt form its GRPO group once reflection is done.

`replace`: `members[i]` is slot i (the original, or its chain's correction). `contrast`: each
corrected unsafe original stays beside its correction (`contrast_members`). `append`: the G
originals first, then the kept corrections in slot order (groups grow: not for fixed-group trainers).
"""

from __future__ import annotations

from safer_vlm.rollout.answers import Answer, RolloutGroup
from safer_vlm.rollout.config import RolloutConfig


def chain_result(group: RolloutGroup, slot: int, config: RolloutConfig) -> Answer | None:
    """The answer a chain puts in the group: first safe correction, else the last one if unsafe
    corrections are kept, else None. With `on_reference: reject`, a correction that refers to an
    earlier attempt is never put in the group."""
    chain = [c for c in group.corrections if c.slot == slot]
    if config.on_reference == "reject":
        chain = [c for c in chain if c.refers_back is None]
    if not chain:
        return None
    for c in chain:
        if c.unsafe is False:
            return c
    return chain[-1] if config.keep_unsafe_corrections else None


def assemble_members(group: RolloutGroup, config: RolloutConfig) -> list[Answer]:
    """The members `config.policy` trains on (the originals when reflection is off)."""
    members = list(group.originals)
    if not config.reflection:
        return members
    results = [chain_result(group, s.slot, config) for s in group.originals]
    if config.policy == "replace":
        return [r if r is not None else o for o, r in zip(members, results, strict=True)]
    if config.policy == "contrast":
        return contrast_members(members, results)
    appended = [r for r in results if r is not None]
    return [*members, *appended]  # the rollout's chain budget keeps this within group_cap


def contrast_members(
    originals: list[Answer], results: list[Answer | None]
) -> list[Answer]:
    """The `contrast` group: G members in which each corrected unsafe original stays beside its
    correction, so GRPO pushes the unsafe answer down and the correction up in the same group.

    `results[j]` is the correction kept for slot j (None: none); only a correction judged safe makes
    a pair (config validation refuses `keep_unsafe_corrections` under contrast, and an unsafe one
    that reaches here anyway never displaces a safe answer). Pairs are kept in slot order, at most
    G // 2 of them. The other slots are filled, in this order, with unsafe originals (uncorrected, then
    those of pairs that did not fit: with odd G one of them takes the spare slot), safe originals, the
    corrections of pairs that did not fit, and last unjudgeable originals (they carry no reward, so
    they are the first to make room). So surplus safe originals make room for pairs, and when every
    answer is unsafe and corrected, half the group is originals and half corrections. Members come
    in slot order, each correction right after its original.
    """
    G = len(originals)
    results = [r if r is not None and r.unsafe is False else None for r in results]
    pairs = [(o, r) for o, r in zip(originals, results, strict=True) if r is not None]
    kept_pairs, spare_pairs = pairs[: G // 2], pairs[G // 2 :]
    paired = {o.uid for o, _ in pairs}
    rest = [o for o in originals if o.uid not in paired]
    fill = (
        [o for o in rest if o.unsafe is True]
        + [o for o, _ in spare_pairs]
        + [o for o in rest if o.unsafe is False]
        + [r for _, r in spare_pairs]
        + [o for o in rest if o.unsafe is None]
    )
    chosen = {m.uid for pair in kept_pairs for m in pair} | {m.uid for m in fill[: G - 2 * len(kept_pairs)]}
    members: list[Answer] = []
    for o, r in zip(originals, results, strict=True):
        if o.uid in chosen:
            members.append(o)
        if r is not None and r.uid in chosen:
            members.append(r)
    return members
