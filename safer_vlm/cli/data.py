"""`safer-vlm data validate`: load a dataset release through its adapter, print one line per
skipped record and a tally, and optionally export the loaded samples as SafetySample JSONL."""

from __future__ import annotations

from pathlib import Path

import typer

from safer_vlm.data.images import MAX_PIXELS
from safer_vlm.data.sources.base import MAX_IMAGES, MAX_TEXT_CHARS
from safer_vlm.errors import ConfigError, DataError


def validate(
    path: Path = typer.Argument(..., help="Dataset root folder (or the file, for jsonl/parquet/csv)."),
    source: str = typer.Option(..., "--source", help="Adapter name, e.g. vlguard, spa_vl, jsonl."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any record was skipped."),
    image_cache: Path | None = typer.Option(
        None,
        "--image-cache",
        help="Where embedded parquet images are written (default .cache/images/<source>).",
    ),
    field_map: list[str] | None = typer.Option(
        None, "--field-map", help="FIELD=COLUMN renames for the generic sources; repeat or comma-join."
    ),
    split: str | None = typer.Option(None, "--split", help="Read only this split (default: all)."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", help="Pixel budget per image."),
    max_text_chars: int = typer.Option(
        MAX_TEXT_CHARS, "--max-text-chars", help="Longest question / reference accepted (characters)."
    ),
    max_images: int = typer.Option(MAX_IMAGES, "--max-images", help="Most images accepted in one item."),
    write: Path | None = typer.Option(None, "--write", help="Export loaded samples to this JSONL file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow --write to replace an existing file."),
) -> None:
    """Check a release: every problem on one line (file, record, field), then loaded/skipped counts."""
    from safer_vlm.data.schema import write_samples
    from safer_vlm.data.sources import load_source

    if write is not None and write.exists() and not overwrite:
        raise DataError(f"{write} already exists; pass --overwrite to replace it")
    result = load_source(
        source,
        path,
        image_cache=image_cache,
        field_map=parse_field_map(field_map),
        split=split,
        max_pixels=max_pixels,
        max_text_chars=max_text_chars,
        max_images=max_images,
        progress=True,
    )
    for problem in result.problems:
        typer.echo(problem.line())
    for note in result.notes:
        typer.echo(note.line())
    typer.echo(result.summary())
    if write is not None:
        n = write_samples(result.samples, write)
        roots = sorted({str(s.root) for s in result.samples if s.root is not None})
        typer.echo(f"wrote {n} samples to {write}; image paths are relative to {', '.join(roots) or '-'}")
    if strict and result.skipped:
        raise typer.Exit(1)


def parse_field_map(pairs: list[str] | None) -> dict[str, str]:
    """`["question=prompt", "images=image_path"]` (or comma-joined) -> `{"question": "prompt", ...}`."""
    mapping: dict[str, str] = {}
    for chunk in pairs or []:
        for pair in chunk.split(","):
            field, sep, column = pair.partition("=")
            if not sep or not field.strip() or not column.strip():
                raise ConfigError(f"--field-map expects FIELD=COLUMN, got {pair!r}")
            mapping[field.strip()] = column.strip()
    return mapping


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(
        help="Dataset adapters: validate a release, export SafetySample JSONL.", no_args_is_help=True
    )
    data_app.command("validate")(validate)
    app.add_typer(data_app, name="data")
