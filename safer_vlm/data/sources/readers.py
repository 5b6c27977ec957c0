"""File readers shared by the adapters. Each yields `(record_key, data)` pairs or a Problem for a
part of the file it could not read, so one bad line never stops the rest from loading."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safer_vlm.data.sources.base import Problem, file_problem

#: Rows per parquet batch: bounds memory on releases with embedded images (SPA-VL is GBs).
PARQUET_BATCH_ROWS = 64


def read_json(path: Path) -> tuple[Any, Problem | None]:
    """A whole JSON file; a Problem (not an exception) if it is missing, not UTF-8 or not JSON."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, file_problem(path, "bad_file", f"cannot read file ({exc.strerror or exc})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, file_problem(path, "not_utf8", f"file is not valid UTF-8 (byte {exc.start})")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, file_problem(path, "bad_file", f"not valid JSON (line {exc.lineno}: {exc.msg})")


def iter_jsonl(path: Path) -> Iterator[tuple[str, Any] | Problem]:
    """One JSON value a line; blank lines skipped; bad bytes or JSON give a Problem for that line."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        yield file_problem(path, "bad_file", f"cannot read file ({exc.strerror or exc})")
        return
    with fh:
        for lineno, raw in enumerate(fh, 1):
            key = f"line {lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield Problem(
                    str(path), key, "<line>", "not_utf8", f"line is not valid UTF-8 (byte {exc.start})"
                )
                continue
            if not line.strip():
                continue
            try:
                yield key, json.loads(line)
            except json.JSONDecodeError as exc:
                yield Problem(str(path), key, "<line>", "bad_json", f"not valid JSON ({exc.msg})")


def _decoded_lines(path: Path, bad: set[int]) -> Iterator[str]:
    """Physical lines of a text file, decoded; numbers of undecodable lines go into `bad`."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                bad.add(lineno)
                yield raw.decode("utf-8", errors="replace")


def iter_csv(path: Path) -> Iterator[tuple[str, dict[str, str]] | Problem]:
    """CSV with a header row; a row touching a non-UTF-8 line is a Problem (rows may span lines)."""
    bad: set[int] = set()
    try:
        lines = _decoded_lines(path, bad)
        reader = csv.reader(lines)
        header = next(reader, None)
    except OSError as exc:
        yield file_problem(path, "bad_file", f"cannot read file ({exc.strerror or exc})")
        return
    if header is None:
        yield file_problem(path, "bad_file", "empty CSV file (no header row)")
        return
    if bad:
        yield file_problem(path, "not_utf8", "header row is not valid UTF-8", record="line 1")
        return
    first = reader.line_num + 1
    try:
        for row in reader:
            last = reader.line_num
            key = f"line {first}"
            span = range(first, last + 1)
            first = last + 1
            if any(n in bad for n in span):
                yield Problem(str(path), key, "<line>", "not_utf8", "row is not valid UTF-8")
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield Problem(
                    str(path),
                    key,
                    "<row>",
                    "wrong_type",
                    f"row has {len(row)} cells but the header has {len(header)}",
                )
                continue
            yield key, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        yield file_problem(
            path, "bad_file", f"CSV parse error ({exc}); rest of file skipped", record=f"line {first}"
        )


def iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]] | Problem]:
    """Rows of a parquet file as dicts, read in small batches; the int is the 0-based row index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        yield file_problem(path, "bad_file", f"not a readable parquet file ({exc})")
        return
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for rec in batch.to_pylist():
                yield row, rec
                row += 1
    except (OSError, pa.ArrowException) as exc:
        yield file_problem(
            path, "bad_file", f"parquet read failed after {row} rows ({exc})", record=f"row {row}"
        )
