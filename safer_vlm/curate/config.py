"""CurateConfig: everything one curation run depends on (sources, eval sets, thresholds, policy,
judge, QI-Box, output). A run folder is a pure function of this config and the input files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from safer_vlm.config import StrictModel
from safer_vlm.curate.dedup import DedupConfig
from safer_vlm.curate.qibox import QIBoxConfig
from safer_vlm.data.decontaminate import DecontamConfig
from safer_vlm.judge.config import JudgeConfig, resolve_judge_paths
from safer_vlm.judge.rubric import Rubric

#: `load_source` keyword arguments a source's `options` may set.
SOURCE_OPTIONS = ("field_map", "split", "max_pixels", "max_text_chars", "max_images", "image_cache")


class SourceSpec(StrictModel):
    """One dataset release to load with `safer_vlm.data.sources.load_source(name, path, **options)`."""

    name: str = Field(description="adapter: beavertails_v, spa_vl, vlguard, mm_safetybench, vlsbench, "
                      "mssbench, siuo, jsonl, parquet or csv")
    path: Path = Field(description="the release folder (or file, for jsonl/parquet/csv); relative to the config file")
    label: str | None = Field(None, description="name in reports (default: the adapter name)")
    options: dict[str, Any] = Field(default_factory=dict, description=f"load_source options: {', '.join(SOURCE_OPTIONS)}")

    @field_validator("options")
    @classmethod
    def _known_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(SOURCE_OPTIONS))
        if unknown:
            raise ValueError(f"unknown options {unknown}; valid: {', '.join(SOURCE_OPTIONS)}")
        return v

    @property
    def display(self) -> str:
        return self.label or self.name


class PolicyConfig(StrictModel):
    """The policy whose answers are scored, and how it samples (HFGenerator settings)."""

    path: str = Field(description="hub id or local checkpoint folder (relative to the config file if it exists there)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "cpu"
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(1.0, ge=0.0, description="0 means greedy (then K answers are identical)")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    batch_size: int = Field(8, ge=1, description="sequences generated at once")
    system_prompt: str | None = None


class CurateConfig(StrictModel):
    """A curation run: load -> validate -> dedup -> decontaminate -> score (QI-Box) -> select."""

    sources: list[SourceSpec] = Field(min_length=1, description="training pool releases, in priority order")
    eval_sets: list[SourceSpec] = Field(default_factory=list, description="evaluation sets to decontaminate against")
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    policy: PolicyConfig
    judge: JudgeConfig = Field(description="judge backend and settings, as in a judge config: {backend: rules | "
                               "openai_compat | hf_local | ensemble, ...}")
    rubric: Rubric = Field(default_factory=Rubric)
    qibox: QIBoxConfig = Field(default_factory=QIBoxConfig)
    output_dir: Path = Field(description="run folder: curated.jsonl, qibox_stats.jsonl, reports, score cache")
    copy_images: bool = Field(
        True,
        description="copy selected images under output_dir/images so curated.jsonl is self-contained; "
        "false: paths are relative to the sources' common folder, recorded in curation.json",
    )
    seed: int = Field(0, description="drives per-prompt sampling seeds and selection tie-breaks")

    def resolve_paths(self, base: Path) -> None:
        """Make relative paths relative to the config file's folder."""
        for spec in [*self.sources, *self.eval_sets]:
            if not spec.path.is_absolute():
                spec.path = (base / spec.path).resolve()
            cache = spec.options.get("image_cache")
            if cache is not None and not Path(cache).is_absolute():
                spec.options = {**spec.options, "image_cache": str((base / cache).resolve())}
        local = base / self.policy.path
        if not Path(self.policy.path).is_absolute() and local.exists():
            self.policy.path = str(local.resolve())
        if not self.output_dir.is_absolute():
            self.output_dir = (base / self.output_dir).resolve()
        resolve_judge_paths(self.judge, base)
