from safer_vlm.data.sources import load_source


def test_records_and_shared_images(tmp_path, make):
    make.image(tmp_path / "imgs" / "a.png")
    recs = [
        {
            "instruction_id": i,
            "instruction": f"What should I do {i}?",
            "image_path": "imgs/a.png",
            "category": "Violent",
            "sub_category": "Weapons",
            "source": "gen",
            "image_description": "d",
            "safety_reason": "r",
        }
        for i in range(3)
    ]
    make.json(tmp_path / "data.json", recs)
    res = load_source("vlsbench", tmp_path)
    assert res.problems == [] and len(res.samples) == 3
    s = res.samples[0]
    assert s.id == "vlsbench:test:0" and s.expected == "warn"
    assert (s.category, s.subcategory, s.meta["origin"], s.meta["safety_reason"]) == (
        "Violent",
        "Weapons",
        "gen",
        "r",
    )
