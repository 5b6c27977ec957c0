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
    ro = SafetyAwareRollout(ScriptedGenerator(), CountingJudge(), Rubric.default(), RolloutConfig(**cfg), renderer=render)
    return [LoggedGroup(step=0, group=g) for g in ro.run(samples, 2).groups]


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
    assert "Analyse what went wrong" in side
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
