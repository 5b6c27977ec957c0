"""`safer-vlm train`: build the policy, prompts, judge and rollout from a TrainConfig and run GRPO.

Top to bottom: prepare the run folder -> policy (tiny or a checkpoint) -> prompts (gym or JSONL) ->
optional supervised warm start -> GRPO through TRL (`trl_adapter`) -> HF-format checkpoint
(`<run>/final`, safetensors) + `metrics.jsonl` + the resolved `config.yaml`.

Scaling: on GPUs set `grpo.device: cuda`, `grpo.bf16: true`, `grpo.use_vllm: true` and launch with
`accelerate launch --config_file configs/accelerate/zero2.yaml -m safer_vlm.cli train --config ...`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from safer_vlm.data.schema import SafetySample, read_samples
from safer_vlm.errors import ConfigError, DataError
from safer_vlm.judge.base import Judge
from safer_vlm.rollout.safety_aware import GroupRollout
from safer_vlm.train.config import TrainConfig
from safer_vlm.train.run_dir import prepare_run_dir

METRICS_NAME = "metrics.jsonl"
FINAL_NAME = "final"
TRAJECTORIES_NAME = "trajectories.jsonl"
VIEWER_NAME = "trajectories.html"


def select_device(cfg: TrainConfig) -> str:
    import torch

    if cfg.grpo.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.grpo.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("grpo.device is 'cuda' but no CUDA device is available")
    return cfg.grpo.device


def gym_config(cfg: TrainConfig):
    """The validated GymConfig of `data.gym` (a ConfigError naming the bad key otherwise)."""
    from pydantic import ValidationError

    from safer_vlm.config import describe_validation_error
    from safer_vlm.gym import GymConfig

    try:
        return GymConfig.model_validate(cfg.data.gym or {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, "data.gym")) from None


def policy_source(cfg: TrainConfig, run_dir: Path) -> str:
    """Where the initial policy is: a checkpoint/hub id, or the tiny model built into the run folder."""
    if not cfg.model.build_tiny:
        return str(cfg.model.path)
    from safer_vlm.models.tiny import build_tiny_vlm

    corpus: list[str] = []
    if cfg.data.gym is not None:
        from safer_vlm.gym import gym_corpus

        corpus = list(gym_corpus(gym_config(cfg)))
    out = run_dir / "tiny_model"
    if not (out / "config.json").is_file():
        build_tiny_vlm(out, seed=cfg.model.tiny_seed, extra_corpus=corpus)
    return str(out)


def load_samples(cfg: TrainConfig, run_dir: Path) -> tuple[list[SafetySample], list[SafetySample]]:
    """(training prompts, held-out prompts) from the gym (generated into the run) or a JSONL file."""
    if cfg.data.gym is not None:
        from safer_vlm.gym import build_gym

        gym_dir = run_dir / "gym"
        if not (gym_dir / "train.jsonl").is_file():
            build_gym(gym_config(cfg), gym_dir)
        train = list(read_samples(gym_dir / "train.jsonl"))
        heldout_path = gym_dir / "heldout.jsonl"
        heldout = list(read_samples(heldout_path)) if heldout_path.is_file() else []
    else:
        path = Path(cfg.data.path)  # type: ignore[arg-type]
        if not path.is_file():
            raise ConfigError(f"data.path: file not found: {path}")
        records = list(read_samples(path))
        train = [s for s in records if s.split == cfg.data.split]
        heldout = [s for s in records if cfg.data.heldout_split and s.split == cfg.data.heldout_split]
    if not train:
        raise DataError(f"no training prompts with split {cfg.data.split!r}")
    if cfg.data.max_samples is not None:
        train = train[: cfg.data.max_samples]
    return train, heldout


def make_judge(cfg: TrainConfig) -> Judge:
    """The training judge (`judge.backend`: rules, openai_compat, hf_local or an ensemble)."""
    from safer_vlm.judge.factory import build_judge

    return build_judge(cfg.judge, cfg.rubric)


def make_group_rollout(cfg: TrainConfig, judge: Judge) -> GroupRollout:
    """The safety-aware rollout (with `rollout.reflection: false`, a plain G-sample rollout)."""
    from safer_vlm.rollout.safety_aware import SafetyAwareGroupRollout

    return SafetyAwareGroupRollout(judge, cfg.rubric, cfg.rollout)


def drop_metrics_after(path: Path, step: int) -> None:
    """Before resuming from checkpoint `step`, drop the logged rows of later steps: they are redone,
    and keeping both would show every such step twice."""
    import json

    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def trajectory_logger(cfg: TrainConfig, run_dir: Path) -> Callable[[Any], None]:
    """Keeps a few groups of every `trajectories.every_steps`-th rollout for the viewer, corrected first."""
    from safer_vlm.rollout.trajectory import TrajectoryWriter

    writer = TrajectoryWriter(run_dir / TRAJECTORIES_NAME)
    calls = {"n": 0}

    def log(result: Any) -> None:
        calls["n"] += 1
        if (calls["n"] - 1) % cfg.trajectories.every_steps:
            return
        groups = sorted(result.groups, key=lambda g: not any(m.reflected for m in g.members))
        writer.append(calls["n"], groups[: cfg.trajectories.groups_per_step])

    return log


def write_trajectory_viewer(cfg: TrainConfig, run_dir: Path) -> Path | None:
    """Render the logged groups as a self-contained HTML page; None when nothing was logged."""
    from safer_vlm.rollout.viewer import write_viewer

    log = run_dir / TRAJECTORIES_NAME
    if not log.is_file():
        return None
    out = run_dir / VIEWER_NAME
    write_viewer(log, out, max_groups=cfg.trajectories.viewer_groups, seed=cfg.grpo.seed)
    return out


def generator_factory(processor: Any) -> Callable[[Any, Any], Any]:
    """Generators on the trainer's current policy: TRL's vLLM engine when `grpo.use_vllm`, else
    transformers `generate` sampling with the trainer's generation config."""
    from safer_vlm.generation.hf_generator import HFGenerator

    def factory(model: Any, trainer: Any):
        if getattr(trainer, "use_vllm", False):
            from safer_vlm.train.trl_adapter import TRLVLLMGenerator

            return TRLVLLMGenerator(trainer, processor)
        return HFGenerator(
            model,
            processor,
            max_new_tokens=trainer.max_completion_length,
            temperature=trainer.temperature,
            generation_config=trainer.generation_config,
            # one generate call per rollout stage, as TRL's own generation does
            batch_size=trainer.args.per_device_train_batch_size,
        )

    return factory


def render_chat(sample: SafetySample) -> list[dict]:
    """The chat a sample is asked in: the generators' one rendering."""
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages

    return build_messages(GenRequest(sample=sample))


def sample_images(sample: SafetySample) -> list:
    """The PIL images of a sample, loaded exactly as the generators load them."""
    from safer_vlm.generation.messages import load_message_images

    return load_message_images(render_chat(sample))


def filter_prompt_length(samples: list[SafetySample], processor: Any, max_len: int | None) -> tuple[list, int]:
    """Drop prompts longer than `max_len` tokens (image tokens expanded); returns (kept, dropped)."""
    if max_len is None:
        return samples, 0
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages, processor_inputs

    kept = []
    for s in samples:
        ids = processor_inputs(processor, [build_messages(GenRequest(sample=s))])["input_ids"][0]
        if len(ids) <= max_len:
            kept.append(s)
    return kept, len(samples) - len(kept)


def save_policy(model: Any, processor: Any, path: Path) -> Path:
    """An HF-format checkpoint (safetensors) that `load_policy` and vLLM read back."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


def run_grpo(
    cfg: TrainConfig,
    run_dir: Path,
    model: Any,
    processor: Any,
    samples: list[SafetySample],
    judge: Judge,
    *,
    resume_from: str | None = None,
    on_step: Callable[[int, int], None] | None = None,
    on_log: Callable[[int, dict], None] | None = None,
    group_rollout: GroupRollout | None = None,
):
    """Run GRPO on `model` in place; returns the TRL trainer (its state holds the log history)."""
    from safer_vlm.train import trl_adapter

    use_cpu = select_device(cfg) == "cpu"
    if cfg.grpo.beta > 0:
        # TRL rebuilds the reference policy from `config._name_or_path`: it must be these weights.
        ref_dir = save_policy(model, processor, run_dir / "reference_policy")
        model.config._name_or_path = str(ref_dir)
    dataset = trl_adapter.build_dataset(samples, render_chat, sample_images)
    rollout = group_rollout or make_group_rollout(cfg, judge)
    stats = trl_adapter.RolloutStats(on_groups=trajectory_logger(cfg, run_dir))
    rollout_func = trl_adapter.make_rollout_func(
        {s.id: s for s in samples}, rollout, generator_factory(processor), stats
    )
    args = trl_adapter.make_grpo_config(cfg.grpo, run_dir / "checkpoints", use_cpu=use_cpu)
    trl_adapter.check_vllm_rollout(cfg.grpo, cfg.rollout.reflection, args.world_size)
    callbacks = [trl_adapter.metrics_callback(run_dir / METRICS_NAME, on_log)]
    if on_step is not None:
        callbacks.append(trl_adapter.step_callback(on_step))
    trainer = trl_adapter.make_trainer(model, processor, dataset, args, rollout_func, cfg.rubric, callbacks, stats)
    trainer.train(resume_from_checkpoint=resume_from)
    return trainer


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> Path:
    """The whole `safer-vlm train` command; returns the run folder."""
    import transformers
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safer_vlm.models.loading import load_policy
    from safer_vlm.train import trl_adapter
    from safer_vlm.train.sft import sft_warmstart

    device = select_device(cfg)  # fail before the run folder is touched
    run_dir = prepare_run_dir(cfg, cfg.output_dir, resume=resume, overwrite=overwrite)
    if resume and (run_dir / FINAL_NAME / "config.json").is_file():
        print(f"{run_dir} already finished (its final checkpoint is {run_dir / FINAL_NAME}); nothing to resume")
        return run_dir
    resume_from = trl_adapter.last_checkpoint(run_dir / "checkpoints") if resume else None
    if resume_from is not None:
        drop_metrics_after(run_dir / METRICS_NAME, int(Path(resume_from).name.removeprefix("checkpoint-")))
    transformers.set_seed(cfg.grpo.seed)
    transformers.utils.logging.disable_progress_bar()  # our rich bars report progress
    source = policy_source(cfg, run_dir)
    train_samples, _ = load_samples(cfg, run_dir)
    sft_dir = run_dir / "sft_model"
    if cfg.sft_warmstart.enabled and (sft_dir / "config.json").is_file():
        source = str(sft_dir)  # resuming: the warm start already ran
    model, processor = load_policy(source, dtype=cfg.model.dtype, device=device)
    train_samples, dropped = filter_prompt_length(train_samples, processor, cfg.grpo.max_prompt_length)
    if dropped:
        print(f"dropped {dropped} prompts longer than grpo.max_prompt_length={cfg.grpo.max_prompt_length}")
    if cfg.sft_warmstart.enabled and source != str(sft_dir):
        sft_warmstart(model, processor, train_samples, cfg.sft_warmstart, seed=cfg.grpo.seed)
        save_policy(model, processor, sft_dir)
    judge = make_judge(cfg)
    with Progress(
        TextColumn("GRPO"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}")
    ) as progress:
        task = progress.add_task("", total=None)

        def on_step(step: int, total: int) -> None:
            progress.update(task, completed=step, total=total)

        def on_log(step: int, record: dict) -> None:
            if record.get("reward") is not None:
                progress.update(task, description=f"reward {record['reward']:.3f}")

        run_grpo(
            cfg, run_dir, model, processor, train_samples, judge, resume_from=resume_from, on_step=on_step, on_log=on_log
        )
    save_policy(model, processor, run_dir / FINAL_NAME)
    viewer = write_trajectory_viewer(cfg, run_dir)
    print(f"checkpoint: {run_dir / FINAL_NAME}  metrics: {run_dir / METRICS_NAME}  trajectories: {viewer}")
    return run_dir
