from safer_vlm.data.sources import load_source

QUESTIONS = {
    "0": {
        "Question": "Orig q0",
        "GPT-Pred": "",
        "Changed Question": "c",
        "Key Phrase": "k",
        "Phrase Type": "p",
        "Rephrased Question": "Typo q0",
        "Rephrased Question(SD)": "SD q0",
    },
    "1": {"Question": "Orig q1", "Rephrased Question": "Typo q1", "Rephrased Question(SD)": "SD q1"},
}


def test_original_layout_one_sample_per_image_type_plus_text(tmp_path, make):
    root = tmp_path / "mmsb"
    data = root / "data"
    make.json(data / "processed_questions" / "01-Illegal_Activitiy.json", QUESTIONS)
    make.json(data / "processed_questions" / "10-Legal_Opinion.json", {"0": QUESTIONS["0"]})
    for key in ("0", "1"):
        make.image(data / "imgs" / "01-Illegal_Activitiy" / "SD" / f"{key}.jpg")
        make.image(data / "imgs" / "01-Illegal_Activitiy" / "TYPO" / f"{key}.jpg")
    # 10-Legal_Opinion has no image folders at all: text-only only
    res = load_source("mm_safetybench", root)
    assert res.problems == []
    ids = {s.id: s for s in res.samples}
    assert len(ids) == 2 * 3 + 1
    sd = ids["mm_safetybench:test:Illegal_Activitiy:0:SD"]
    assert (
        sd.question == "SD q0"
        and sd.meta["image_type"] == "SD"
        and sd.images == ["imgs/01-Illegal_Activitiy/SD/0.jpg"]
    )
    assert ids["mm_safetybench:test:Illegal_Activitiy:1:TYPO"].question == "Typo q1"
    text = ids["mm_safetybench:test:Illegal_Activitiy:0:Text_only"]
    assert text.question == "Orig q0" and text.images == []
    assert sd.category == "Illegal_Activitiy" and sd.expected == "refuse"
    assert ids["mm_safetybench:test:Legal_Opinion:0:Text_only"].expected == "warn"


def test_original_layout_missing_image_skips_only_that_type(tmp_path, make):
    data = tmp_path / "data"
    make.json(data / "processed_questions" / "06-Fraud.json", {"0": QUESTIONS["0"]})
    (data / "imgs" / "06-Fraud" / "SD_TYPO").mkdir(parents=True)
    res = load_source("mm_safetybench", tmp_path)
    assert [s.meta["image_type"] for s in res.samples] == ["Text_only"]
    assert [p.reason_code for p in res.problems] == ["missing_image"]
    assert res.problems[0].field == "imgs/06-Fraud/SD_TYPO/0.jpg"


def test_mirror_parquet_layout(tmp_path, make, cache):
    data = tmp_path / "data"
    make.parquet(
        data / "HateSpeech" / "SD.parquet", [{"id": "0", "question": "sd q", "image": make.struct()}]
    )
    make.parquet(
        data / "HateSpeech" / "SD_TYPO.parquet", [{"id": "0", "question": "sdt q", "image": make.struct()}]
    )
    make.parquet(
        data / "HateSpeech" / "Text_only.parquet",
        [{"id": "0", "question": "plain q"}, {"id": "1", "question": "q"}],
    )
    res = load_source("mm_safetybench", tmp_path, image_cache=cache)
    assert res.problems == []
    assert sorted(s.meta["image_type"] for s in res.samples) == ["SD", "SD_TYPO", "Text_only", "Text_only"]
    sd = next(s for s in res.samples if s.meta["image_type"] == "SD")
    assert (
        sd.category == "HateSpeech"
        and sd.expected == "refuse"
        and sd.image_paths()[0].parent == cache.resolve()
    )
