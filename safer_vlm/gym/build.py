"""Build a gym: plan exact counts per (expected, cue), draw items without repeats, split by question
text so train and held-out never share a question, write JSONL + PNGs + a manifest."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from safer_vlm.data.schema import (
    EXPECTED_BEHAVIOURS,
    GROUNDING_KEY,
    REASONING_KEY,
    SafetySample,
    write_samples,
)
from safer_vlm.errors import ConfigError, DataError
from safer_vlm.gym.config import UNSAFE_CUES, GymConfig
from safer_vlm.gym.draw import draw_item
from safer_vlm.gym.responses import template_response
from safer_vlm.gym.vocab import (
    DEICTIC_OBJECTS,
    HAZARD_BACKGROUND,
    QUESTION_TEMPLATES,
    SAFE_BACKGROUNDS,
    SHAPE_COLOURS,
    SHAPES,
    readable,
    word_category,
)
from safer_vlm.lexicon import BENIGN_WORDS, OBJECT_WORDS, with_article, words_of_level
from safer_vlm.run_folder import write_text_atomic

SPLITS = ("train", "heldout")
MANIFEST = "gym.json"
GYM_FORMAT = 1


@dataclass(frozen=True)
class GymPaths:
    """Where a built gym lies; image paths inside the JSONL are relative to `root`."""

    root: Path
    train: Path
    heldout: Path
    images: Path
    manifest: Path


@dataclass(frozen=True)
class _Question:
    text: str
    template: int
    word: str | None  # None for a question that points at the image's written word


def question_split(question: str, heldout_share: float) -> str:
    """The split a question text belongs to, from its hash: the same for every seed and size."""
    h = int(hashlib.sha256(question.encode("utf-8")).hexdigest()[:12], 16) / 16**12
    return "heldout" if h < heldout_share else "train"


def all_questions() -> list[_Question]:
    """Every question the gym can ask, in a fixed order."""
    words = OBJECT_WORDS
    out = []
    for t, template in enumerate(QUESTION_TEMPLATES):
        out += [_Question(template.format(obj=with_article(w)), t, w) for w in words]
        out += [_Question(template.format(obj=d), t, None) for d in DEICTIC_OBJECTS]
    return out


def _apportion(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Exact counts summing to n, closest to n * share (largest remainder, ties in key order)."""
    raw = {k: n * s for k, s in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    order = sorted(shares, key=lambda k: (-(raw[k] - counts[k]), list(shares).index(k)))
    for k in order[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def plan_slots(n: int, cfg: GymConfig) -> list[tuple[str, str, bool]]:
    """(expected, cue, deictic question) for each of n items, in exact configured proportions."""
    slots: list[tuple[str, str, bool]] = []
    for behaviour, nb in _apportion(n, cfg.behaviour).items():
        if behaviour == "comply":
            nd = round(nb * cfg.benign_deictic)
            slots += [("comply", "none", True)] * nd + [("comply", "none", False)] * (nb - nd)
        else:
            for cue, k in _apportion(nb, cfg.cue).items():
                slots += [(behaviour, cue, cue == "image")] * k
    return slots


class _SplitPlanner:
    """Draws items for one split from the questions that belong to it, never repeating one."""

    def __init__(self, cfg: GymConfig, split: str) -> None:
        self.cfg = cfg
        self.split = split
        self.rng = random.Random(f"gym:{cfg.seed}:{split}")
        mine = [q for q in all_questions() if question_split(q.text, cfg.heldout_share) == split]
        self.deictic = [q for q in mine if q.word is None]
        self.by_level = {
            "refuse": [q for q in mine if q.word in words_of_level("refuse")],
            "warn": [q for q in mine if q.word in words_of_level("warn")],
            "comply": [q for q in mine if q.word in BENIGN_WORDS],
        }
        self.used: set[tuple[str, str, str, str, str | None]] = set()
        self._cycles: dict[str, list[str]] = {}

    def _next_word(self, level: str) -> str:
        """Words of a level in turn (a fresh shuffle each round), so every word occurs about equally
        often in a split, instead of a rare word missing from training but asked on held-out."""
        cycle = self._cycles.get(level)
        if not cycle:
            words = list(BENIGN_WORDS if level == "comply" else words_of_level(level))
            self.rng.shuffle(words)
            cycle = self._cycles[level] = words
        return cycle.pop()

    def _pick(self, pool: list[_Question], what: str) -> _Question:
        if not pool:
            raise ConfigError(
                f"gym: no {self.split} questions for {what}; change heldout_share ({self.cfg.heldout_share})"
            )
        return self.rng.choice(pool)

    def draw(self, expected: str, cue: str, deictic: bool) -> dict:
        for _ in range(1000):
            item = self._draw_once(expected, cue, deictic)
            key = (item["question"], item["background"], item["shape"], item["colour"], item["word"])
            if key not in self.used:
                self.used.add(key)
                return item
        raise ConfigError(
            f"gym: cannot find a new {self.split} item for expected={expected} cue={cue}; "
            f"ask for fewer items or a larger heldout_share"
        )

    def _draw_once(self, expected: str, cue: str, deictic: bool) -> dict:
        rng = self.rng
        level = None if expected == "comply" else expected
        if deictic:
            q = self._pick(self.deictic, "questions pointing at the image")
            word = self._next_word(expected)
        else:
            pool = self.by_level[expected]
            self._pick(pool, f"{expected} words")  # a clear error when the split has none
            word = self._next_word(expected)
            q = self._pick([x for x in pool if x.word == word] or pool, f"{expected} words")
            word = q.word
        hazard_image = cue in ("image", "both")
        background = HAZARD_BACKGROUND[level] if hazard_image and level else rng.choice(SAFE_BACKGROUNDS)
        colour = rng.choice([c for c in SHAPE_COLOURS if readable(c, background)])
        shape = rng.choice(SHAPES)
        # The image names the thing when the question points at it, or when both carry the cue.
        label = word if (deictic or cue == "both") and self.cfg.draw_labels else None
        return {
            "question": q.text,
            "template": q.template,
            "word": word,
            "background": background,
            "colour": colour,
            "shape": shape,
            "label": label,
        }


def generate_split(cfg: GymConfig, split: str) -> list[tuple[SafetySample, dict]]:
    """The samples of one split (without images written), each with its drawing parameters."""
    n = cfg.n_train if split == "train" else cfg.n_heldout
    planner = _SplitPlanner(cfg, split)
    slots = plan_slots(n, cfg)
    planner.rng.shuffle(slots)
    out = []
    for i, (expected, cue, deictic) in enumerate(slots):
        item = planner.draw(expected, cue, deictic)
        harm = word_category(item["word"])
        sample_id = f"gym-{split}-{i:05d}"
        sample = SafetySample(
            id=sample_id,
            source="gym",
            split=split,
            question=item["question"],
            images=[f"images/{sample_id}.png"],
            category=harm[0] if harm else "benign",
            subcategory=item["word"],
            expected=expected,  # type: ignore[arg-type]
            meta={
                "cue": cue,
                "colour": item["colour"],
                "shape": item["shape"],
                "background": item["background"],
                "label": item["label"],
                "word": item["word"],
                "template": item["template"],
                "deictic": deictic,
                "seed": cfg.seed,
                GROUNDING_KEY: (
                    {"colour": item["background"]}
                    if cfg.grounding == "background"
                    else {"colour": item["colour"], "shape": item["shape"]}
                ),
                **(
                    {REASONING_KEY: {"word": None if deictic else item["word"], "colour": item["background"]}}
                    if cfg.reasoning == "grounded"
                    else {}
                ),
            },
        )
        sample.reference = template_response(sample, expected)
        out.append((sample, item))
    return out


def _check_disjoint(splits: dict[str, list[SafetySample]]) -> None:
    train_q = {s.question for s in splits["train"]}
    held_q = {s.question for s in splits["heldout"]}
    shared = train_q & held_q
    if shared:  # cannot happen by construction; checked because the held-out claim rests on it
        raise RuntimeError(f"gym: train and held-out share questions: {sorted(shared)[:3]}")


def _prepare_out_dir(out_dir: Path, cfg: GymConfig, overwrite: bool) -> None:
    """Claim `out_dir` (`safer_vlm.run_folder`): the same config rebuilds in place; another config
    is refused unless `overwrite` (then only the gym's own entries are removed)."""
    from safer_vlm.run_folder import FolderConflict, claim_folder, make_dir

    try:
        claim_folder(out_dir, "gym", cfg.model_dump(mode="json"), ("train.jsonl", "heldout.jsonl", "images", MANIFEST),
                     overwrite=overwrite, can_resume=False, reuse_same_config=True)
    except FolderConflict as exc:
        raise DataError(str(exc)) from None
    make_dir(out_dir / "images")


def build_gym(cfg: GymConfig, out_dir: Path, overwrite: bool = False) -> GymPaths:
    """Write the gym for `cfg` under `out_dir`: train.jsonl, heldout.jsonl, images/*.png, gym.json.

    Rebuilding the same config into the same folder rewrites identical bytes; a folder holding
    anything else is refused unless `overwrite` (then the old gym files are removed first).
    """
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, cfg, overwrite)
    splits: dict[str, list[SafetySample]] = {}
    for split in SPLITS:
        generated = generate_split(cfg, split)
        for sample, item in generated:
            rng = random.Random(f"gym-draw:{cfg.seed}:{sample.id}")
            img = draw_item(
                cfg.image_size, item["background"], item["shape"], item["colour"], item["label"], rng
            )
            img.save(out_dir / sample.images[0], format="PNG")
        splits[split] = [s for s, _ in generated]
    _check_disjoint(splits)
    paths = GymPaths(
        root=out_dir,
        train=out_dir / "train.jsonl",
        heldout=out_dir / "heldout.jsonl",
        images=out_dir / "images",
        manifest=out_dir / MANIFEST,
    )
    write_samples(splits["train"], paths.train)
    write_samples(splits["heldout"], paths.heldout)
    manifest = {
        "format": GYM_FORMAT,
        "config": cfg.model_dump(mode="json"),
        "counts": {split: _counts(samples) for split, samples in splits.items()},
    }
    write_text_atomic(paths.manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths


def _counts(samples: list[SafetySample]) -> dict[str, dict[str, int]]:
    """Items per expected behaviour and per cue, for the manifest and reports."""
    by_expected = {str(b): sum(s.expected == b for s in samples) for b in EXPECTED_BEHAVIOURS}
    by_cue = {c: sum(s.meta["cue"] == c for s in samples) for c in ("none", *UNSAFE_CUES)}
    return {"expected": by_expected, "cue": by_cue}
