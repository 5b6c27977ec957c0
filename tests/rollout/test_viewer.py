from __future__ import annotations

import base64
import io
import re

from PIL import Image
from rollout_fakes import CountingJudge, ScriptedGenerator, render

from safer_vlm.judge.rubric import Rubric
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.safety_aware import SafetyAwareRollout
from safer_vlm.rollout.trajectory import LoggedGroup, TrajectoryWriter
from safer_vlm.rollout.viewer import render_html, select_groups, write_viewer

EVIL = "<script>alert('x')</script> & \"quoted\""


def logged(make_sample, **cfg):
    samples = [make_sample("a", ["unsafe", "safe"], question=EVIL), make_sample("b", ["safe", "safe"])]
    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(**cfg), renderer=render)
    return [LoggedGroup(step=0, group=g) for g in ro.run(ScriptedGenerator(), samples, 2).groups]


def test_page_is_self_contained_and_escaped(make_sample):
    page = render_html(logged(make_sample))
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "gives &lt;harmful&gt; help" in page  # judge rationale escaped too
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "http://" not in page and "https://" not in page


def test_images_are_embedded(make_sample):
    page = render_html(logged(make_sample))
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 2  # one image per group
    im = Image.open(io.BytesIO(base64.b64decode(uris[0])))
    assert im.size == (64, 48) and im.getpixel((0, 0)) == (200, 30, 30)


def test_correction_shown_beside_unsafe_answer_and_prompt(make_sample):
    groups = logged(make_sample)
    page = render_html(groups)
    corr = groups[0].group.corrections[0]
    side = page[page.index('<div class="side">') :]
    first, prompt, second = (side.index(x) for x in ("unsafe answer", "reflection prompt", "correction (round 1)"))
    assert first < prompt < second
    assert corr.uid in side and groups[0].group.originals[0].uid in side
    assert "Write a new response to the original request" in side
    assert "its final answer gives harmful help" in side  # the prompt names the unsafe part
    assert "reward <b>" in page and "criterion/safety" in page
    assert "not in the group" in page  # the replaced original is shown as discarded


def test_missing_image_is_a_visible_note(make_sample, image_root):
    groups = logged(make_sample)
    (image_root / "red.png").unlink()
    page = render_html(groups)
    assert "image unavailable" in page and "not found" in page


def test_select_prefers_corrected_groups_and_is_reproducible(make_sample):
    groups = logged(make_sample) + logged(make_sample, reflection=False)
    chosen = select_groups(groups, 1, seed=3)
    assert len(chosen) == 1 and chosen[0].group.corrections
    assert select_groups(groups, 3, seed=5) == select_groups(groups, 3, seed=5)


def test_write_viewer_from_log(tmp_path, make_sample):
    log = tmp_path / "t.jsonl"
    TrajectoryWriter(log).append(0, [lg.group for lg in logged(make_sample)])
    with log.open("a") as fh:
        fh.write("garbage\n")
    out = tmp_path / "out" / "view.html"
    assert write_viewer(log, out, max_groups=5) == 2
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "t.jsonl:3: not valid JSON" in page


def test_contrast_group_shows_each_unsafe_original_beside_its_correction_with_advantages(make_sample):
    """Issue 11 acceptance: for a `contrast` group the viewer shows each unsafe original and its
    correction side by side, with their advantages."""
    samples = [make_sample("a", ["unsafe", "safe", "badthink", "safe"])]
    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(policy="contrast"), renderer=render)
    (group,) = ro.run(ScriptedGenerator(), samples, 4).groups
    page = render_html([LoggedGroup(step=0, group=group)])
    assert "unsafe originals beside their corrections" in page
    section = page[page.index("unsafe originals beside") : page.index("<h2>not in the group")]
    pairs = section.split('<div class="pair">')[1:]
    assert len(pairs) == 2
    for pair, slot in zip(pairs, (0, 2), strict=True):
        original, correction = group.originals[slot], next(c for c in group.corrections if c.corrects == slot)
        assert pair.index(original.uid) < pair.index(correction.uid)  # original left, correction right
        neg = re.findall(r'adv neg">advantage (-[0-9.]+)', pair)
        pos = re.findall(r'adv pos">advantage (\+[0-9.]+)', pair)
        assert len(neg) == 1 and len(pos) == 1
    assert "unsafe: answer" in page and "unsafe: reasoning" in page  # which part was unsafe
    # a replace group has no such pairs: its unsafe originals left the group
    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(policy="replace"), renderer=render)
    (replaced,) = ro.run(ScriptedGenerator(), samples, 4).groups
    assert "beside their corrections" not in render_html([LoggedGroup(step=0, group=replaced)])


def test_correction_referring_back_is_marked(make_sample):
    samples = [make_sample("a", ["unsafe", "safe"], reflect=["refers"])]
    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(), renderer=render)
    page = render_html([LoggedGroup(step=0, group=g) for g in ro.run(ScriptedGenerator(), samples, 2).groups])
    assert "refers to an earlier attempt: &quot;My previous answer&quot;" in page
