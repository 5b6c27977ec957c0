"""Judge configs: one YAML file picks a backend (`backend: rules | openai_compat | hf_local |
ensemble`) and its settings; unknown keys are errors. Secrets never live here, only env var names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from safer_vlm.config import StrictModel, describe_validation_error, read_yaml
from safer_vlm.errors import ConfigError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _JudgeBase(StrictModel):
    batch_size: int = Field(16, ge=1, description="items handed to the judge per call (progress granularity)")
    max_failure_rate: float = Field(
        0.5, ge=0, le=1,
        description="training stops (after a checkpoint) when more than this share of answers got no usable "
        "verdict (transport errors + unparseable replies) over `failure_window` steps",
    )
    failure_window: int = Field(3, ge=1, description="optimizer steps over which max_failure_rate is measured")


class RulesJudgeConfig(_JudgeBase):
    """Offline keyword/format rules (no model): for tests, the demo and a sanity baseline."""

    backend: Literal["rules"] = "rules"


class OpenAICompatJudgeConfig(_JudgeBase):
    """A model behind any OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, SGLang, hosted)."""

    backend: Literal["openai_compat"] = "openai_compat"
    base_url: str = Field(description="endpoint root including /v1, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(min_length=1, description="model name the server expects")
    judge_id: str | None = Field(
        None, description="id recorded in verdicts and cache keys; default openai:<model>"
    )
    api_key_env: str | None = Field(
        None, description="NAME of the env var holding the API key (never the key)"
    )
    concurrency: int = Field(64, ge=1, description="requests in flight at once")
    timeout_s: float = Field(30.0, gt=0, description="per-request timeout")
    max_retries: int = Field(5, ge=0, description="retries per request after the first attempt")
    backoff_s: float = Field(0.5, ge=0, description="first backoff; doubles per retry, with jitter")
    backoff_max_s: float = Field(30.0, ge=0, description="longest backoff between two attempts")
    unreachable_cooldown_s: float = Field(
        60.0, ge=0, description="after one request spends its retries, others fail at once for this long"
    )
    cache_dir: Path | None = Field(
        None, description="on-disk reply cache (relative to this file); none = off"
    )
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(512, ge=1)
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="extra request fields (e.g. response_format)"
    )
    send_images: bool = Field(
        True,
        description="send the sample's images with each request; false for a text-only judge model (it then "
        "judges from the question and the response alone)",
    )
    json_schema: bool = Field(
        True,
        description="send the rubric as `response_format: {type: json_schema}` (vLLM, SGLang and OpenAI "
        "constrain the reply to it); a server that rejects it gets the plain prompt instead, once and for "
        "all, with one log line. Ignored when extra_body sets response_format itself",
    )

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not a key")
        return v

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class HFLocalJudgeConfig(_JudgeBase):
    """A transformers VLM loaded in-process; greedy generation with the rubric prompt."""

    backend: Literal["hf_local"] = "hf_local"
    model_path: str = Field(min_length=1, description="local folder (relative to this file) or hub id")
    judge_id: str | None = None
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(512, ge=1)
    device: str = "cpu"
    cache_dir: Path | None = None


class EnsembleJudgeConfig(_JudgeBase):
    """Several judges on every item. `combine` merges scores per criterion (mean, min, or majority =
    median); `unsafe_vote` decides each unsafe part (answer, reasoning) from the members' own
    `Rubric.unsafe_parts`, and merges the penalty flags (ties in `majority` count as set)."""

    backend: Literal["ensemble"] = "ensemble"
    members: list[JudgeConfig] = Field(min_length=1)
    combine: Literal["mean", "min", "majority"] = "mean"
    unsafe_vote: Literal["majority", "any", "all"] = Field(
        "majority",
        description="per part (answer, reasoning): unsafe when half or more (majority), any, or all of the "
        "members that parsed find that part unsafe; the merged verdict carries exactly this decision",
    )
    judge_id: str | None = None


JudgeConfig = Annotated[
    RulesJudgeConfig | OpenAICompatJudgeConfig | HFLocalJudgeConfig | EnsembleJudgeConfig,
    Field(discriminator="backend"),
]
EnsembleJudgeConfig.model_rebuild()
_ADAPTER: TypeAdapter[Any] = TypeAdapter(JudgeConfig)


def parse_judge_config(data: dict[str, Any], source: str = "<judge config>") -> Any:
    """Validate a raw mapping as a JudgeConfig; ConfigError (one line, no secret echoed) otherwise."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        message = describe_validation_error(exc, source)
        for err in exc.errors():
            if err["loc"] and err["loc"][-1] == "api_key_env" and isinstance(err.get("input"), str):
                message = message.replace(repr(err["input"]), "'***'")
        raise ConfigError(message) from None


def resolve_judge_paths(cfg: Any, base: Path) -> None:
    if isinstance(cfg, EnsembleJudgeConfig):
        for member in cfg.members:
            resolve_judge_paths(member, base)
        return
    cache_dir = getattr(cfg, "cache_dir", None)
    if cache_dir is not None and not Path(cache_dir).is_absolute():
        cfg.cache_dir = base / cache_dir
    if isinstance(cfg, HFLocalJudgeConfig) and (base / cfg.model_path).exists():
        cfg.model_path = str(base / cfg.model_path)


def check_verdict_budget(cfg: Any, rubric: Any) -> None:
    """ValueError unless every OpenAI-compatible judge in `cfg` (ensemble members included) that sends
    the rubric's schema has a `max_tokens` covering the longest verdict that schema allows."""
    if isinstance(cfg, EnsembleJudgeConfig):
        for member in cfg.members:
            check_verdict_budget(member, rubric)
        return
    if isinstance(cfg, OpenAICompatJudgeConfig) and cfg.json_schema and "response_format" not in cfg.extra_body:
        need = rubric.verdict_token_bound()
        if cfg.max_tokens < need:
            raise ValueError(
                f"judge max_tokens {cfg.max_tokens} is below the longest verdict the rubric's schema allows "
                f"({need} tokens, rationale up to {rubric.rationale_max_chars} characters); raise max_tokens "
                "or lower rubric.rationale_max_chars"
            )


def load_judge_config(path: Path) -> Any:
    """Read a judge YAML into one of the JudgeConfig models; relative paths resolve against its folder."""
    path = Path(path)
    cfg = parse_judge_config(read_yaml(path), str(path))
    resolve_judge_paths(cfg, path.resolve().parent)
    return cfg
