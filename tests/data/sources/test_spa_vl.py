from safer_vlm.data.sources import load_source


def test_splits_classes_and_embedded_images(tmp_path, make, cache):
    root = tmp_path / "spa"
    make.parquet(
        root / "data" / "train-00000-of-00002.parquet",
        [
            {
                "image": make.struct(),
                "question": "q1",
                "chosen": "good",
                "rejected": "bad",
                "image_name": "a.jpg",
            },
            {
                "image": make.struct((0, 0, 9)),
                "question": "q2",
                "chosen": "good2",
                "rejected": "bad2",
                "image_name": "b.jpg",
            },
        ],
    )
    make.parquet(
        root / "validation" / "validation-00000-of-00001.parquet",
        [
            {
                "image": make.struct(),
                "question": "v1",
                "chosen": "c",
                "rejected": "r",
                "image_name": "a.jpg",
                "class1": "Privacy",
                "class2": "Personal",
                "class3": "Location",
            },
        ],
    )
    make.parquet(
        root / "test" / "harm-00000-of-00001.parquet",
        [{"image": make.struct(), "question": "h1", "class1": "Harm", "class2": "Sub", "class3": "Leaf"}],
    )
    make.parquet(
        root / "test" / "help-00000-of-00001.parquet",
        [{"image": make.struct(), "question": "p1", "class1": "Help", "class2": "Sub", "class3": "Leaf"}],
    )
    res = load_source("spa_vl", root, image_cache=cache)
    assert res.problems == []
    by_split = {}
    for s in res.samples:
        by_split.setdefault(s.split, []).append(s)
    assert {k: len(v) for k, v in by_split.items()} == {
        "train": 2,
        "validation": 1,
        "test_harm": 1,
        "test_help": 1,
    }
    v = by_split["validation"][0]
    assert (v.category, v.subcategory, v.meta["class3"], v.reference) == (
        "Privacy",
        "Personal",
        "Location",
        "c",
    )
    assert by_split["test_help"][0].expected == "comply"
    assert by_split["test_harm"][0].expected is None
    assert by_split["train"][0].id == "spa_vl:train:train-00000-of-00002:0"
    assert all(p.is_file() for s in res.samples for p in s.image_paths())
    assert len(list(cache.iterdir())) == 2  # two distinct pictures, written once each

    only = load_source("spa_vl", root, image_cache=cache, split="test_help")
    assert [s.split for s in only.samples] == ["test_help"]
