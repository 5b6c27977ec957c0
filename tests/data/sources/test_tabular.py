import json

from safer_vlm.data.schema import SafetySample, write_samples
from safer_vlm.data.sources import load_source


def test_jsonl_roundtrip_of_safetysample_records(tmp_path, make):
    make.image(tmp_path / "img" / "a.png")
    samples = [
        SafetySample(
            id="x1",
            source="mine",
            split="test",
            question="q1",
            images=["img/a.png"],
            expected="refuse",
            category="c",
            meta={"k": 1},
        ),
        SafetySample(id="x2", source="mine", question="q2"),
    ]
    write_samples(samples, tmp_path / "s.jsonl")
    res = load_source("jsonl", tmp_path / "s.jsonl")
    assert res.problems == []
    assert [s.model_dump() for s in res.samples] == [s.model_dump() for s in samples]
    assert res.samples[0].image_paths() == [(tmp_path / "img" / "a.png").resolve()]


def test_jsonl_field_map_single_path_and_derived_ids(tmp_path, make):
    make.image(tmp_path / "a.png")
    make.jsonl(tmp_path / "d.jsonl", [{"prompt": "hello?", "image_path": "a.png"}, {"prompt": "text only"}])
    res = load_source(
        "jsonl", tmp_path / "d.jsonl", field_map={"question": "prompt", "images": "image_path"}, split="dev"
    )
    assert res.problems == []
    assert [s.images for s in res.samples] == [["a.png"], []]
    assert [s.id for s in res.samples] == ["jsonl:dev:d:1", "jsonl:dev:d:2"]
    assert res.samples[0].source == "jsonl" and res.samples[0].split == "dev"


def test_csv_with_json_list_and_meta(tmp_path, make):
    make.image(tmp_path / "a.png")
    make.image(tmp_path / "b.png")
    path = tmp_path / "d.csv"
    path.write_text(
        "id,question,images,expected,meta\n"
        '1,"multi\nline question",a.png,comply,\n'
        '2,two images,"[""a.png"", ""b.png""]",,"{""k"": 2}"\n',
        encoding="utf-8",
    )
    res = load_source("csv", path)
    assert res.problems == []
    assert [(s.id, s.question, s.images, s.expected, s.meta) for s in res.samples] == [
        ("1", "multi\nline question", ["a.png"], "comply", {}),
        ("2", "two images", ["a.png", "b.png"], None, {"k": 2}),
    ]


def test_parquet_embedded_bytes_and_paths(tmp_path, make, cache):
    make.image(tmp_path / "a.png")
    make.parquet(tmp_path / "emb.parquet", [{"id": "e1", "question": "q", "images": [make.struct()]}])
    make.parquet(tmp_path / "paths.parquet", [{"id": "p1", "question": "q", "images": "a.png"}])
    emb = load_source("parquet", tmp_path / "emb.parquet", image_cache=cache)
    assert emb.problems == [] and emb.samples[0].root == cache.resolve()
    assert emb.samples[0].images[0].endswith(".png") and len(emb.samples[0].images[0]) == 64 + 4
    paths = load_source("parquet", tmp_path / "paths.parquet", image_cache=cache)
    assert (
        paths.problems == []
        and paths.samples[0].images == ["a.png"]
        and paths.samples[0].root == tmp_path.resolve()
    )


def test_jpeg_bytes_get_jpg_extension(tmp_path, make, cache):
    make.parquet(
        tmp_path / "j.parquet",
        [{"question": "q", "images": {"bytes": make.png_bytes(fmt="JPEG"), "path": "x.png"}}],
    )
    res = load_source("parquet", tmp_path / "j.parquet", image_cache=cache)
    assert res.problems == [] and res.samples[0].images[0].endswith(".jpg")
    assert json.loads(res.samples[0].model_dump_json())["images"] == res.samples[0].images
