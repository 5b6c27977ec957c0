from safer_vlm.data.sources import load_source


def _row(make, question, color, r1, safe1="yes", category="animal_abuse"):
    return {
        "question": question,
        "image": make.struct(color),
        "category": category,
        "image_severity": 2,
        "response_1": r1,
        "response_2": "other",
        "response_1_from": "m1",
        "response_2_from": "m2",
        "more_helpful_response_id": "1",
        "is_response_1_safe": safe1,
        "is_response_2_safe": "no",
        "safer_response_id": "1",
        "response_1_harmless_rate": 2,
        "response_2_harmless_rate": -1,
        "response_1_helpful_rate": 3,
        "response_2_helpful_rate": 1,
    }


def test_repeated_prompt_collapses_with_every_response_pair(tmp_path, make, cache):
    root = tmp_path / "bt"
    make.parquet(
        root / "data" / "animal_abuse" / "evaluation.parquet",
        [
            _row(make, "What is happening here?", (10, 10, 10), "A1"),
            _row(make, "What is happening here?", (10, 10, 10), "A2", safe1="no"),
            _row(make, "What is happening here?", (99, 10, 10), "B1"),  # same question, other image
            _row(make, "Another question?", (10, 10, 10), "C1"),  # same image, other question
        ],
    )
    make.parquet(root / "data" / "animal_abuse" / "train.parquet", [_row(make, "Train q?", (1, 1, 1), "T")])
    res = load_source("beavertails_v", root, image_cache=cache)
    assert res.problems == []
    assert res.counts()["loaded"] == 4
    ev = [s for s in res.samples if s.split == "evaluation"]
    assert len(ev) == 3
    merged = next(s for s in ev if len(s.meta["responses"]) == 2)
    assert [r["response_1"] for r in merged.meta["responses"]] == ["A1", "A2"]
    assert [r["is_response_1_safe"] for r in merged.meta["responses"]] == ["yes", "no"]
    assert merged.meta["rows"] == [0, 1]
    assert merged.expected is None and merged.category == "animal_abuse"
    assert merged.root == cache.resolve() and merged.image_paths()[0].suffix == ".png"
    # stable ids across runs, and the cache is written once per content
    again = load_source("beavertails_v", root, image_cache=cache)
    assert [s.id for s in again.samples] == [s.id for s in res.samples]
    assert len(list(cache.glob("*.png"))) == 3


def test_split_selection(tmp_path, make, cache):
    root = tmp_path / "bt"
    make.parquet(root / "data" / "x" / "train.parquet", [_row(make, "q?", (1, 1, 1), "T")])
    make.parquet(root / "data" / "x" / "evaluation.parquet", [_row(make, "q2?", (1, 1, 1), "T")])
    res = load_source("beavertails_v", root, image_cache=cache, split="train")
    assert [s.split for s in res.samples] == ["train"]
