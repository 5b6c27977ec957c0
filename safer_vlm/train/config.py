"""The training config: one validated object from which a GRPO run is fully reproducible.

Relative paths (model path, data path, output_dir) are relative to the directory the command runs
in, so `make demo` from the repository root writes `runs/demo/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from safer_vlm.config import StrictModel
from safer_vlm.judge.config import JudgeConfig, RulesJudgeConfig, check_verdict_budget, resolve_judge_paths
from safer_vlm.judge.rubric import Rubric
from safer_vlm.rollout.config import RolloutConfig


class ModelSection(StrictModel):
    """The policy: a local HF-format folder or hub id, or the offline tiny model built into the run."""

    path: str | None = Field(None, description="local HF-format model folder or hub id (Qwen2.5-VL family)")
    build_tiny: bool = Field(False, description="build the offline tiny Qwen2.5-VL into <output_dir>/tiny_model")
    tiny_seed: int = Field(0, description="seed for the tiny model's random weights")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="weights dtype when loading (float32 on CPU)"
    )
    attn_implementation: str | dict[str, str] = Field(
        "auto",
        description=(
            "attention for the policy and TRL's reference model: auto (CPU: transformers' default; CUDA: "
            "sdpa_padsafe in the text model, sdpa in the vision tower), sdpa, sdpa_padsafe, eager, "
            "flash_attention_2 or any name transformers accepts, or a per-sub-model dict "
            "{text_config: ..., vision_config: ...}"
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSection:
        if self.build_tiny == (self.path is not None):
            raise ValueError("set exactly one of model.path or model.build_tiny")
        return self


class DataSection(StrictModel):
    """Training prompts: the synthetic gym (built into the run folder) or a SafetySample JSONL."""

    gym: dict | None = Field(None, description="GymConfig fields; the gym is generated into <output_dir>/gym")
    path: Path | None = Field(None, description="SafetySample JSONL (images relative to its folder)")
    split: str = Field("train", description="only records with this `split` are trained on")
    heldout_split: str | None = Field("heldout", description="split scored before/after training (demo)")
    max_samples: int | None = Field(None, ge=1, description="use at most this many training prompts")

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        if (self.gym is None) == (self.path is None):
            raise ValueError("set exactly one of data.gym or data.path")
        return self


class GRPOSection(StrictModel):
    """Every GRPO knob. Defaults are the sister project's (EasyR1) recipe for Qwen2.5-VL-3B/7B."""

    learning_rate: float = Field(1e-6, gt=0, description="AdamW learning rate")
    lr_scheduler_type: str = Field("constant", description="transformers scheduler name")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping norm")
    num_generations: int = Field(4, ge=2, description="G: answers sampled per prompt (group size)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature for rollouts")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling for rollouts")
    top_k: int = Field(0, ge=0, description="top-k sampling for rollouts (0: off)")
    max_prompt_length: int | None = Field(
        4096, ge=1, description="prompts longer than this (tokens, images expanded) are dropped and counted"
    )
    max_completion_length: int = Field(2048, ge=1, description="max new tokens per answer")
    per_device_train_batch_size: int = Field(
        8, ge=1, description="completions (not prompts) per device per micro-step"
    )
    gradient_accumulation_steps: int = Field(4, ge=1, description="micro-steps per optimizer step")
    max_steps: int = Field(-1, description="optimizer steps; -1 means use num_train_epochs")
    num_train_epochs: float = Field(2.0, gt=0, description="passes over the prompts when max_steps is -1")
    beta: float = Field(0.01, ge=0, description="KL coefficient to the reference policy (k3 estimator)")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"] = Field(
        "dapo", description="loss aggregation; dapo = token mean over the batch, as in EasyR1"
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="divide advantages by the group std (group), batch std, or not at all"
    )
    epsilon: float = Field(0.2, gt=0, description="lower PPO clip range")
    epsilon_high: float | None = Field(None, gt=0, description="upper clip range (DAPO clip-higher); None = epsilon")
    num_iterations: int = Field(1, ge=1, description="optimisation passes per generated batch (mu)")
    mask_truncated_completions: bool = Field(False, description="exclude answers cut at max length from the loss")
    seed: int = Field(42, description="seed for data order, sampling and initialisation")
    logging_steps: int = Field(1, ge=1, description="log metrics every this many steps")
    save_steps: int = Field(100, ge=1, description="save a resumable TRL checkpoint every this many steps")
    save_total_limit: int | None = Field(2, ge=1, description="keep at most this many checkpoints")
    use_vllm: bool = Field(False, description="generate with vLLM (GPU only)")
    vllm_mode: Literal["server", "colocate"] = Field(
        "colocate", description="server: `trl vllm-serve` on other GPUs; colocate: vLLM inside the trainer"
    )
    vllm_server_base_url: str | None = Field(None, description="vLLM server URL (server mode)")
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="vLLM memory share (colocate)")
    vllm_importance_sampling_correction: bool = Field(
        True, description="correct vLLM/trainer logprob mismatch (reflected answers carry NaN logprobs: ratio 1)"
    )
    rollout_batch_size: int | None = Field(
        None, ge=1, description="sequences per HF generate call in the rollout (None: a whole stage in one call)"
    )
    cache_implementation: Literal["dynamic", "static"] | None = Field(
        None, description="KV cache for HF generation (static: pre-allocated; with compile_generation, compiled)"
    )
    compile_generation: bool = Field(
        False, description="let transformers torch.compile the decode step (needs a static cache; GPU)"
    )
    bf16: bool = Field(False, description="bfloat16 mixed precision (forced off on CPU)")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu")
    log_completions: bool = Field(False, description="print sampled completions at each log step")

    @model_validator(mode="after")
    def _batch_divisible(self) -> GRPOSection:
        total = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if total % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size x gradient_accumulation_steps ({total}) must be a multiple of "
                f"num_generations ({self.num_generations})"
            )
        return self


class SFTWarmstart(StrictModel):
    """A short supervised warm start on template responses before GRPO.

    With `behaviour: random` each item's target behaviour is drawn at random, so the warm start
    teaches the output format and vocabulary but not the safety decision; GRPO must learn that.
    """

    enabled: bool = Field(False, description="run the warm start")
    steps: int = Field(100, ge=1, description="optimizer steps")
    learning_rate: float = Field(1e-3, gt=0, description="AdamW learning rate")
    batch_size: int = Field(8, ge=1, description="examples per step")
    final_learning_rate: float | None = Field(
        None, gt=0, description="decay the rate linearly to this over the steps (None: constant); the "
        "low-rate end settles the template tokens, which GRPO's negative advantages then barely move"
    )
    behaviour: Literal["random", "expected"] = Field(
        "random", description="random: format only; expected: also teaches the decision (a baseline)"
    )


class TinySection(StrictModel):
    """Sizes of the tiny model built when `model.build_tiny` (models/tiny.py); the vision tower follows
    the text width."""

    hidden_size: int = Field(64, ge=16, description="text and vision width (4 heads; MLP twice as wide)")
    num_layers: int = Field(2, ge=1, description="text decoder layers (the vision tower keeps 2)")


class TrajectoryLog(StrictModel):
    """Which rollout groups are kept for the trajectory viewer (`<run>/trajectories.jsonl` + `.html`)."""

    every_steps: int = Field(5, ge=1, description="log groups from every this many rollout steps")
    groups_per_step: int = Field(4, ge=0, description="groups logged per such step (corrected ones first)")
    viewer_groups: int = Field(24, ge=1, description="groups shown in trajectories.html")


#: Qwen2.5-VL's projections in every decoder layer (attention and MLP). The vision tower's MLP uses the
#: same names, so the target is restricted to the language model unless `lora.train_vision`.
QWEN2_5_VL_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRASection(StrictModel):
    """Low-rank adapters through peft: only the adapters train, the reference is the adapter-disabled
    model (no second copy), and `final/` holds the adapter (plus merged weights when asked)."""

    enabled: bool = Field(False, description="train LoRA adapters instead of every weight")
    r: int = Field(16, ge=1, description="adapter rank")
    alpha: int = Field(32, ge=1, description="scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] = Field(
        default_factory=lambda: list(QWEN2_5_VL_LORA_TARGETS),
        description="module names to adapt (Qwen2.5-VL: attention and MLP projections of the text model)",
    )
    train_vision: bool = Field(
        False, description="also adapt the vision tower's modules of those names (frozen by default)"
    )
    merge_on_export: bool = Field(
        False, description="also write merged full weights to <final>/merged (loadable without peft)"
    )


class LoggingSection(StrictModel):
    """Where metrics go, next to `metrics.jsonl` (always written)."""

    report_to: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=list,
        description="extra backends: tensorboard (<run>/tensorboard) and wandb (offline unless WANDB_MODE is set)",
    )
    wandb_project: str = Field("safer-vlm", description="wandb project name")


class TrainConfig(StrictModel):
    """A full GRPO run: model, data, judge, rubric, rollout, optimiser knobs, warm start, output."""

    model: ModelSection
    data: DataSection
    judge: JudgeConfig = Field(
        default_factory=RulesJudgeConfig,
        description="judge backend and settings (rules | openai_compat | hf_local | ensemble)",
    )
    rubric: Rubric = Field(default_factory=Rubric)
    rollout: RolloutConfig = Field(
        default_factory=RolloutConfig, description="safety-aware rollout; rollout.reflection: false = plain GRPO"
    )
    grpo: GRPOSection = Field(default_factory=GRPOSection)
    sft_warmstart: SFTWarmstart = Field(default_factory=SFTWarmstart)
    tiny: TinySection = Field(default_factory=TinySection, description="sizes of the tiny model (model.build_tiny)")
    trajectories: TrajectoryLog = Field(default_factory=TrajectoryLog)
    lora: LoRASection = Field(default_factory=LoRASection, description="LoRA adapters (peft)")
    logging: LoggingSection = Field(default_factory=LoggingSection, description="metric backends")
    output_dir: Path = Field(Path("runs/train"), description="run folder (config, metrics, checkpoint)")

    def resolve_paths(self, base: Path) -> None:
        """Relative paths in a config file resolve against the file's folder, as in every command
        (curate, eval, judge): `data.path`, `output_dir`, the judge's cache folder, and `model.path`
        when it names a folder that exists there (otherwise it is a hub id)."""
        if self.data.path is not None and not self.data.path.is_absolute():
            self.data.path = (base / self.data.path).resolve()
        if not self.output_dir.is_absolute():
            self.output_dir = (base / self.output_dir).resolve()
        if self.model.path is not None and not Path(self.model.path).is_absolute() and (base / self.model.path).exists():
            self.model.path = str((base / self.model.path).resolve())
        resolve_judge_paths(self.judge, base)

    @model_validator(mode="after")
    def _judge_fits_rubric(self) -> TrainConfig:
        check_verdict_budget(self.judge, self.rubric)  # max_tokens must hold the schema's longest verdict
        return self

    @model_validator(mode="after")
    def _warmstart_needs_gym(self) -> TrainConfig:
        # The warm start trains on the gym's template responses, which need the gym's visual facts.
        if self.sft_warmstart.enabled and self.data.gym is None:
            raise ValueError("sft_warmstart.enabled needs data.gym (it trains on the gym's template responses)")
        return self
