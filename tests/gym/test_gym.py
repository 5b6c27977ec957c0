from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from safer_vlm.data.images import load_image
from safer_vlm.data.schema import read_samples
from safer_vlm.errors import DataError
from safer_vlm.gym import GymConfig, build_gym, gym_corpus, question_split, template_response
from safer_vlm.gym.vocab import BACKGROUNDS, HAZARD_BACKGROUND, SAFE_BACKGROUNDS, SHAPE_COLOURS, SHAPES
from safer_vlm.lexicon import BENIGN_WORDS, HARM_WORDS
from safer_vlm.response_format import parse_response
from safer_vlm.run_folder import MANIFEST_NAME


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    cfg = GymConfig(seed=3, n_train=40, n_heldout=20, image_size=56)
    a = _tree_bytes(build_gym(cfg, tmp_path / "a").root)
    b = _tree_bytes(build_gym(cfg, tmp_path / "b").root)
    # the run-folder manifest records when it was made (to the second): provenance, not gym data, so
    # it is compared without that field (comparing it whole failed whenever the builds straddled a second)
    ma, mb = (json.loads(m.pop(MANIFEST_NAME)) for m in (a, b))
    assert a == b
    assert {k: v for k, v in ma.items() if k != "created"} == {k: v for k, v in mb.items() if k != "created"}
    assert len([k for k in a if k.endswith(".png")]) == 60


def test_another_seed_gives_another_gym(tmp_path: Path) -> None:
    a = build_gym(GymConfig(seed=1, n_train=30, n_heldout=10), tmp_path / "a")
    b = build_gym(GymConfig(seed=2, n_train=30, n_heldout=10), tmp_path / "b")
    assert a.train.read_bytes() != b.train.read_bytes()


def test_splits_share_no_question_and_no_item(small_gym) -> None:
    train = list(read_samples(small_gym.train))
    held = list(read_samples(small_gym.heldout))
    assert len(train) == 200 and len(held) == 100
    assert not {s.question for s in train} & {s.question for s in held}
    assert all(question_split(s.question, 0.25) == "train" for s in train)
    assert all(question_split(s.question, 0.25) == "heldout" for s in held)
    for samples in (train, held):
        keys = [
            (s.question, s.meta["background"], s.meta["shape"], s.meta["colour"], s.meta["word"])
            for s in samples
        ]
        assert len(set(keys)) == len(keys)
    assert len({s.id for s in train + held}) == 300


def test_proportions_match_the_config(small_gym, small_gym_cfg) -> None:
    samples = list(read_samples(small_gym.train)) + list(read_samples(small_gym.heldout))
    n = len(samples)
    expected = Counter(s.expected for s in samples)
    for b, share in small_gym_cfg.behaviour.items():
        assert abs(expected[b] / n - share) <= 0.01
    unsafe = [s for s in samples if s.expected != "comply"]
    cues = Counter(s.meta["cue"] for s in unsafe)
    for cue, share in small_gym_cfg.cue.items():
        assert abs(cues[cue] / len(unsafe) - share) <= 0.02
    assert all(s.meta["cue"] == "none" for s in samples if s.expected == "comply")
    benign = [s for s in samples if s.expected == "comply"]
    assert abs(sum(s.meta["deictic"] for s in benign) / len(benign) - 0.5) <= 0.02


def test_custom_proportions(tmp_path: Path) -> None:
    cfg = GymConfig(n_train=100, n_heldout=0, behaviour={"refuse": 1, "comply": 1}, cue={"image": 1})
    samples = list(read_samples(build_gym(cfg, tmp_path).train))
    assert Counter(s.expected for s in samples) == {"refuse": 50, "comply": 50}
    assert {s.meta["cue"] for s in samples if s.expected == "refuse"} == {"image"}


def test_cues_sit_where_meta_says(small_gym) -> None:
    for s in list(read_samples(small_gym.train)) + list(read_samples(small_gym.heldout)):
        cue, bg, word = s.meta["cue"], s.meta["background"], s.meta["word"]
        text_cue = f" {word}" in s.question and s.expected != "comply"
        image_cue = bg in HAZARD_BACKGROUND.values()
        assert text_cue == (cue in ("text", "both")), s.id
        assert image_cue == (cue in ("image", "both")), s.id
        if image_cue:
            assert bg == HAZARD_BACKGROUND[s.expected]
        else:
            assert bg in SAFE_BACKGROUNDS
        assert s.meta["colour"] in SHAPE_COLOURS and s.meta["shape"] in SHAPES
        if s.expected == "comply":
            assert s.category == "benign" and word in BENIGN_WORDS
        else:
            assert word in HARM_WORDS[s.category][s.expected]


def test_images_load_at_declared_size_with_the_declared_background(small_gym) -> None:
    for s in list(read_samples(small_gym.heldout))[:40]:
        (path,) = s.image_paths()
        img = load_image(path)
        assert img.size == (56, 56)
        assert img.getpixel((1, 1)) == BACKGROUNDS[s.meta["background"]]
        colours = {rgb for _, rgb in img.getcolors(56 * 56)}
        assert SHAPE_COLOURS[s.meta["colour"]] in colours


def test_records_round_trip(small_gym) -> None:
    lines = small_gym.train.read_text(encoding="utf-8").splitlines()
    samples = list(read_samples(small_gym.train))
    assert [s.model_dump_json() for s in samples] == lines
    s = samples[0]
    assert s.source == "gym" and s.split == "train" and s.reference == template_response(s, s.expected)
    assert s.root == small_gym.root.resolve()


def test_rebuild_into_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    cfg = GymConfig(n_train=5, n_heldout=5)
    with pytest.raises(DataError, match="not empty"):
        build_gym(cfg, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    out = tmp_path / "gym"
    build_gym(cfg, out)
    build_gym(cfg, out)  # same config: rebuilt in place
    with pytest.raises(DataError):
        build_gym(GymConfig(n_train=6, n_heldout=5), out)
    build_gym(GymConfig(n_train=6, n_heldout=5), out, overwrite=True)
    assert json.loads((out / "gym.json").read_text())["config"]["n_train"] == 6
    assert len(list((out / "images").iterdir())) == 11


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        GymConfig(image_size=100)
    with pytest.raises(ValueError):
        GymConfig(behaviour={"refuse": 1, "maybe": 1})
    with pytest.raises(ValueError):
        GymConfig(cue={"text": 0})


def test_templates_are_formatted_grounded_and_distinct(small_gym) -> None:
    s = next(x for x in read_samples(small_gym.train) if x.expected == "comply")
    firsts = set()
    for b in ("refuse", "comply", "warn"):
        text = template_response(s, b)
        parsed = parse_response(text)
        assert parsed.strict
        assert len(text.split()) <= 20
        firsts.add(parsed.answer.split()[0])
        firsts.add(parsed.think.split()[0])
        if b != "refuse":  # the default grounding names the background, a large easily read region
            assert f"the picture is {s.meta['background']}" in parsed.answer
            assert s.meta["shape"] not in parsed.answer
    assert len(firsts) == 6
    with pytest.raises(ValueError):
        template_response(s, "maybe")


def test_grounding_facts_follow_the_config(tmp_path: Path, small_gym) -> None:
    for s in read_samples(small_gym.train):
        assert s.meta["grounding_facts"] == {"colour": s.meta["background"]}
    cfg = GymConfig(seed=7, n_train=20, n_heldout=5, image_size=56, grounding="shape")
    paths = build_gym(cfg, tmp_path / "shape")
    for s in read_samples(paths.train):
        assert s.meta["grounding_facts"] == {"colour": s.meta["colour"], "shape": s.meta["shape"]}
        answer = parse_response(template_response(s, "comply")).answer
        assert f"a {s.meta['colour']} {s.meta['shape']}" in answer
        assert s.reference in gym_corpus(cfg)
    with pytest.raises(ValueError):
        GymConfig(grounding="word")


def test_grounded_reasoning_names_the_object_and_the_colour(tmp_path: Path) -> None:
    cfg = GymConfig(seed=7, n_train=20, n_heldout=5, image_size=56, reasoning="grounded")
    corpus = set(gym_corpus(cfg))
    for s in read_samples(build_gym(cfg, tmp_path).train):
        think = parse_response(s.reference).think
        obj = f"a{'n' if s.meta['word'][0] in 'aeiou' else ''} {s.meta['word']}" if not s.meta["deictic"] else "it"
        assert think.startswith(f"{s.meta['background'].capitalize()}, {obj} ")
        for b in ("refuse", "comply", "warn"):
            assert template_response(s, b) in corpus


def test_corpus_covers_every_question_and_reference(small_gym, small_gym_cfg) -> None:
    corpus = set(gym_corpus(small_gym_cfg))
    for s in read_samples(small_gym.train):
        assert s.question in corpus and s.reference in corpus
    assert gym_corpus(small_gym_cfg) == sorted(corpus)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_object_asked_about_on_held_out_occurs_in_training_about_equally(seed: int) -> None:
    """The demo's gym: a held-out question may ask about a word, never one training did not teach;
    words are drawn in turn, so no word is rare in training."""
    from safer_vlm.demo import DEFAULT_GYM
    from safer_vlm.gym.build import generate_split

    cfg = GymConfig(**{**DEFAULT_GYM, "seed": seed})
    train = [s for s, _ in generate_split(cfg, "train")]
    held = [s for s, _ in generate_split(cfg, "heldout")]
    named = Counter(s.meta["word"] for s in train if not s.meta["deictic"])
    assert {s.meta["word"] for s in held if not s.meta["deictic"]} <= set(named)
    for level in ("refuse", "warn"):
        counts = [named[w] for levels in HARM_WORDS.values() for w in levels[level]]
        assert min(counts) >= 0.5 * max(counts), (level, counts)


def test_harm_words_are_single_tokens_of_the_demo_tokenizer(tmp_path: Path) -> None:
    """The decision follows the harm word; one token per word lets the policy read it at once."""
    from safer_vlm.models.tiny import _train_tokenizer
    from safer_vlm.models.tiny_corpus import builtin_corpus

    tok = _train_tokenizer([*builtin_corpus(), *gym_corpus(GymConfig(reasoning="grounded"))], 1024)
    for word in [*BENIGN_WORDS, *(w for levels in HARM_WORDS.values() for ws in levels.values() for w in ws)]:
        assert len(tok.tokenize(" " + word)) == 1, word
