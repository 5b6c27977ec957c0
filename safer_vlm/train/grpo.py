"""`safer-vlm train`: build the policy, prompts, judge and rollout from a TrainConfig and run GRPO.

Top to bottom: prepare the run folder -> policy (tiny or a checkpoint) -> prompts (gym or JSONL) ->
optional supervised warm start -> GRPO through TRL (`trl_adapter`) -> HF-format checkpoint
(`<run>/final`, safetensors) + `metrics.jsonl` + the resolved `config.yaml`.

Scaling: on GPUs set `grpo.device: cuda`, `grpo.bf16: true`, `grpo.use_vllm: true` and launch with
`accelerate launch --config_file configs/accelerate/zero2.yaml -m safer_vlm.cli train --config ...`.
Under `accelerate launch` the main process prepares the run folder and writes every file; the
others wait for it. `model.attn_implementation` (default `auto`: the padding-safe SDPA on CUDA)
reaches the policy and TRL's reference model; `lora.enabled` trains peft adapters only;
`logging.report_to` adds TensorBoard / wandb next to `metrics.jsonl`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safer_vlm.data.schema import SafetySample, read_samples
from safer_vlm.errors import ConfigError, DataError
from safer_vlm.judge.base import Judge
from safer_vlm.rollout.answers import GroupRollout
from safer_vlm.train.config import TrainConfig
from safer_vlm.train.run_dir import TRAIN_FOLDER, RunFolder, claim_run_dir

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
        build_tiny_vlm(out, seed=cfg.model.tiny_seed, extra_corpus=corpus,
                       hidden_size=cfg.tiny.hidden_size, num_layers=cfg.tiny.num_layers)
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
    from safer_vlm.sync_bridge import close_on_interrupt

    return close_on_interrupt(build_judge(cfg.judge, cfg.rubric))


def make_group_rollout(cfg: TrainConfig, judge: Judge) -> GroupRollout:
    """The safety-aware rollout (with `rollout.reflection: false`, a plain G-sample rollout)."""
    from safer_vlm.rollout.safety_aware import SafetyAwareRollout

    cfg.rollout.require_fixed_groups("a fixed-group GRPO trainer (TRL)")
    return SafetyAwareRollout(judge, cfg.rubric, cfg.rollout)


def drop_metrics_after(path: Path, step: int) -> None:
    """Before resuming from checkpoint `step`, drop the logged rows of later steps: they are redone,
    and keeping both would show every such step twice."""
    import json

    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def trajectory_logger(cfg: TrainConfig, run_dir: Path, rank: int = 0) -> Callable[[Any], None]:
    """Keeps a few groups of every `trajectories.every_steps`-th rollout for the viewer, corrected first.
    Rank r > 0 keeps its own groups in its own shard, `trajectories.rank<r>.jsonl`."""
    from safer_vlm.distributed import rank_path
    from safer_vlm.rollout.trajectory import TrajectoryWriter

    writer = TrajectoryWriter(rank_path(run_dir / TRAJECTORIES_NAME, rank))
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


def generator_factory(processor: Any, grpo: Any = None) -> Callable[[Any, Any], Any]:
    """Generators on the trainer's current policy: TRL's vLLM engine when `grpo.use_vllm`, else
    transformers `generate` sampling with the trainer's generation config and `grpo`'s rollout knobs
    (`rollout_batch_size`, `cache_implementation`, `compile_generation`)."""
    from safer_vlm.generation.hf_generator import HFGenerator

    def factory(model: Any, trainer: Any):
        if getattr(trainer, "use_vllm", False):
            from safer_vlm.train.trl_adapter import TRLVLLMGenerator

            return TRLVLLMGenerator(trainer, processor)
        batch = getattr(grpo, "rollout_batch_size", None)
        if batch is None:
            # every sequence of a rollout stage in one generate call (TRL hands one call
            # per_device_train_batch_size x steps_per_generation prompts), as TRL's own generation does
            args = trainer.args
            batch = args.per_device_train_batch_size * max(1, getattr(args, "steps_per_generation", 1) or 1)
        return HFGenerator(
            model,
            processor,
            max_new_tokens=trainer.max_completion_length,
            temperature=trainer.temperature,
            generation_config=trainer.generation_config,
            batch_size=batch,
            cache_implementation=getattr(grpo, "cache_implementation", None),
            compile=getattr(grpo, "compile_generation", None),
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
    """An HF-format checkpoint (safetensors) that `load_policy`, `AutoProcessor` and vLLM read back."""
    from safer_vlm.models.loading import save_processor

    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    save_processor(processor, path)
    return path


def export_policy(cfg: TrainConfig, trained: Any, processor: Any, path: Path) -> Path:
    """The run's `final/`: full weights, or with LoRA the adapter (and merged weights when
    `lora.merge_on_export`); always the standard processor files."""
    from safer_vlm.train.lora import export_adapter, is_peft_model

    if is_peft_model(trained):
        return export_adapter(trained, processor, path, merge=cfg.lora.merge_on_export)
    return save_policy(trained, processor, path)


def processor_files_callback(processor: Any):
    """A TrainerCallback adding the standard processor files to every saved TRL checkpoint, so any
    checkpoint, not only `final/`, loads with `AutoProcessor` and vLLM."""
    from transformers import TrainerCallback

    from safer_vlm.models.loading import write_standard_processor_files

    class _ProcessorFiles(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                write_standard_processor_files(processor, folder)

    return _ProcessorFiles()


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
    reference_dir: str | Path | None = None,
    on_trainer: Callable[[Any], None] | None = None,
):
    """Run GRPO on `model` in place; returns the TRL trainer (its state holds the log history).

    `reference_dir`: a checkpoint (or hub id) holding exactly `model`'s current weights, from which
    TRL builds the reference model when beta > 0; without it they are first saved to
    `<run>/reference_policy` (a full copy: 7.5 GB for a 3B model in bf16). `on_trainer`: called with
    the trainer once it is built, before training starts."""
    from accelerate import PartialState

    from safer_vlm.models.attention import attn_of
    from safer_vlm.train import lora, trl_adapter
    from safer_vlm.train.logging_backends import backend_callbacks

    state = PartialState()
    use_cpu = select_device(cfg) == "cpu"
    peft_config = lora.peft_config(cfg.lora)
    build_reference = cfg.grpo.beta > 0 and peft_config is None  # with LoRA, TRL disables the adapters
    if build_reference:
        # TRL rebuilds the reference policy from `config._name_or_path`: it must be these weights.
        ref_dir = reference_dir
        if ref_dir is None:
            ref_dir = run_dir / "reference_policy"
            if state.is_main_process:
                save_policy(model, processor, ref_dir)
            state.wait_for_everyone()
        model.config._name_or_path = str(ref_dir)
    dataset = trl_adapter.build_dataset(samples, render_chat, sample_images)
    rollout = group_rollout or make_group_rollout(cfg, judge)
    health = trl_adapter.JudgeHealth(cfg.judge.max_failure_rate, cfg.judge.failure_window)
    rollout_func = trl_adapter.make_rollout_func(
        {s.id: s for s in samples}, rollout, generator_factory(processor, cfg.grpo),
        on_result=trajectory_logger(cfg, run_dir, state.process_index), health=health,
    )
    args = trl_adapter.make_grpo_config(cfg.grpo, run_dir / "checkpoints", use_cpu=use_cpu)
    if build_reference:
        # the reference model runs the policy's attention (a per-sub-model dict TRL would flatten)
        args.model_init_kwargs = {"attn_implementation": attn_of(model)}
    trl_adapter.check_vllm_rollout(cfg.grpo, cfg.rollout.reflection, args.world_size)
    callbacks = [trl_adapter.metrics_callback(run_dir / METRICS_NAME, on_log), processor_files_callback(processor)]
    callbacks += backend_callbacks(cfg.logging.report_to, run_dir, cfg.logging.wandb_project, main=state.is_main_process)
    callbacks.append(trl_adapter.judge_health_callback(health))
    if on_step is not None:
        callbacks.append(trl_adapter.step_callback(on_step))
    trainer = trl_adapter.make_trainer(
        model, processor, dataset, args, rollout_func, cfg.rubric, callbacks, peft_config=peft_config
    )
    if on_trainer is not None:
        on_trainer(trainer)
    trainer.train(resume_from_checkpoint=resume_from)
    trl_adapter.raise_if_stopped(health)  # a judge that fails too often stops the run, checkpoint saved
    return trainer


@dataclass
class TrainRun:
    """What a run has built, handed to every hook: the policy is trained in place, so `model` is the
    current policy at each call (during GRPO too). `heldout` is the held-out split (empty when the
    data has none); `trainer` is TRL's trainer once GRPO has started (None before)."""

    cfg: TrainConfig
    run_dir: Path
    model: Any
    processor: Any
    train_samples: list[SafetySample]
    heldout: list[SafetySample]
    judge: Judge
    trainer: Any = None


@dataclass(frozen=True)
class TrainHooks:
    """Points where a client of `train()` (the demo) looks at, or further trains, the policy. All
    optional; each runs in every process (the demo runs one); an exception in a hook fails the run
    as any error there would (a folder with no work yet is removed, see `train`).

    - `after_load(run)`: the policy as loaded, before any warm start (the demo scores it).
    - `after_warm_start(run)`: after the supervised warm start (or right after `after_load` when it
      is off), before the warm policy is saved as `sft_model/`; it may train further (the demo's
      reflection warm start) and what it trains is the policy GRPO starts from. Not called when a
      resumed run finds the warm start already done.
    - `on_grpo_step(run, step, max_steps)`: after every GRPO optimizer step (held-out learning curves).
    - `before_finish(run)`: after GRPO and the export of `final/`, before the run folder is marked
      finished (the demo's final scoring, summary and report; with `warm_start_only`, right after the
      warm start's export)."""

    after_load: Callable[[TrainRun], None] | None = None
    after_warm_start: Callable[[TrainRun], None] | None = None
    on_grpo_step: Callable[[TrainRun, int, int], None] | None = None
    before_finish: Callable[[TrainRun], None] | None = None


def _call(hook: Callable[..., None] | None, *args: Any) -> None:
    if hook is not None:
        hook(*args)


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    hooks: TrainHooks | None = None,
    folder: RunFolder = TRAIN_FOLDER,
    warm_start_only: bool = False,
    progress: bool = True,
) -> Path:
    """The whole `safer-vlm train` command; returns the run folder. A run that fails before its
    first real work (paths, model, data, judge) leaves no folder behind (`Claim.abandon`).

    `hooks`: see TrainHooks. `folder`: how the run folder is claimed (the command named in its
    manifest, whether it can resume, the entries --overwrite may remove). `warm_start_only`: stop
    after the warm start, exported as `final/` (the demo's ablation shares one per seed).
    `progress`: progress bars and the closing line (off in the ablation's worker processes)."""
    claims: list[Any] = []
    try:
        run_dir = _train(cfg, resume=resume, overwrite=overwrite, claims=claims, hooks=hooks or TrainHooks(),
                         folder=folder, warm_start_only=warm_start_only, progress=progress)
    except BaseException:
        for claim in claims:
            claim.abandon()
        raise
    for claim in claims:
        claim.finish()
    return run_dir


def _saved_so_far(run_dir: Path) -> str:
    """For the interrupt line: the checkpoint a --resume continues from."""
    from safer_vlm.train.trl_adapter import last_checkpoint

    found = last_checkpoint(run_dir / "checkpoints")
    return f"last checkpoint {found}" if found else "no checkpoint yet: --resume starts from the first step"


def _train(cfg: TrainConfig, *, resume: bool, overwrite: bool, claims: list[Any], hooks: TrainHooks,
           folder: RunFolder, warm_start_only: bool, progress: bool) -> Path:
    """`train`'s body; the folder claim is appended to `claims` and marked `started` once the
    real work (warm start or GRPO) begins.

    Under `torchrun` / `accelerate launch` every process runs this: the main process prepares the run
    folder, builds the tiny model, the gym and the warm start first; the others then find them there.
    Only the main process writes shared files (metrics, checkpoints, `final/`, the viewer); rank r
    keeps its rollout groups in `trajectories.rank<r>.jsonl`."""
    import transformers
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safer_vlm.models.attention import resolve_attn_implementation
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train import trl_adapter
    from safer_vlm.train.distributed import check_replicas_agree, training_state
    from safer_vlm.train.logging_backends import write_versions
    from safer_vlm.train.sft import sft_warmstart

    device = select_device(cfg)  # fail before the run folder is touched
    state = training_state(device)  # as TRL will build it: else every CPU rank thinks it is the main one
    main = state.is_main_process
    if device == "cuda":
        device = str(state.device)  # cuda:<local rank> under accelerate launch
    from safer_vlm.judge.preflight import check_judge_reachable

    check_judge_reachable(cfg.judge)
    run_dir = Path(cfg.output_dir)
    if main:
        claims.append(claim_run_dir(cfg, cfg.output_dir, resume=resume, overwrite=overwrite, command=folder.command,
                                    can_resume=folder.can_resume, entries=folder.entries))
        run_dir = claims[-1].path
        if folder.can_resume:
            claims[-1].saved_note = lambda: _saved_so_far(run_dir)
    state.wait_for_everyone()
    finished = any((run_dir / FINAL_NAME / name).is_file() for name in ("config.json", "adapter_config.json"))
    if resume and finished:
        if main:
            print(f"{run_dir} already finished (its final checkpoint is {run_dir / FINAL_NAME}); nothing to resume")
        return run_dir
    resume_from = trl_adapter.last_checkpoint(run_dir / "checkpoints") if resume else None
    if resume_from is not None and main:
        drop_metrics_after(run_dir / METRICS_NAME, int(Path(resume_from).name.removeprefix("checkpoint-")))
    if main:
        write_versions(run_dir)
    transformers.set_seed(cfg.grpo.seed)
    transformers.utils.logging.disable_progress_bar()  # our rich bars report progress
    sft_dir = run_dir / "sft_model"
    columns = (TextColumn("{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    show = main and progress
    with state.main_process_first():  # the main process builds; the others read what it built
        source = policy_source(cfg, run_dir)
        train_samples, heldout = load_samples(cfg, run_dir)
        warm_done = cfg.sft_warmstart.enabled and (sft_dir / "config.json").is_file()
        if warm_done:
            source = str(sft_dir)  # resuming, or another process ran it: the warm start is done
        attn = resolve_attn_implementation(cfg.model.attn_implementation, device)
        model, processor = load_policy(source, dtype=cfg.model.dtype, device=device, attn_implementation=attn)
        train_samples, dropped = filter_prompt_length(train_samples, processor, cfg.grpo.max_prompt_length)
        if dropped and main:
            print(f"dropped {dropped} prompts longer than grpo.max_prompt_length={cfg.grpo.max_prompt_length}")
        judge = make_judge(cfg)
        run = TrainRun(cfg, run_dir, model, processor, train_samples, heldout, judge)
        if not warm_done:
            _call(hooks.after_load, run)
            if cfg.sft_warmstart.enabled:
                with Progress(*columns, disable=not show) as bar:
                    task = bar.add_task("", total=cfg.sft_warmstart.steps, stage="SFT warm start")
                    sft_warmstart(
                        model, processor, train_samples, cfg.sft_warmstart, seed=cfg.grpo.seed,
                        on_step=lambda step, loss: bar.update(task, completed=step, description=f"loss {loss:.3f}"),
                    )
            _call(hooks.after_warm_start, run)
            if cfg.sft_warmstart.enabled:
                save_policy(model, processor, sft_dir)
    for claim in claims:
        claim.started = True  # checks passed: from here on the folder holds work
    final = run_dir / FINAL_NAME
    if warm_start_only:
        if main:
            export_policy(cfg, model, processor, final)
        _call(hooks.before_finish, run)
        state.wait_for_everyone()
        return run_dir
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task("", total=None, stage="GRPO")

        def on_step(step: int, total: int) -> None:
            bar.update(task, completed=step, total=total)
            _call(hooks.on_grpo_step, run, step, total)

        def on_log(step: int, record: dict) -> None:
            if record.get("reward") is not None:
                bar.update(task, description=f"reward {record['reward']:.3f}")

        def on_trainer(trainer: Any) -> None:
            run.trainer = trainer

        trainer = run_grpo(
            cfg, run_dir, model, processor, train_samples, judge, resume_from=resume_from, on_step=on_step,
            on_log=on_log, reference_dir=sft_dir if cfg.sft_warmstart.enabled else source, on_trainer=on_trainer,
        )
    sharded = getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False)
    if not sharded:
        check_replicas_agree(trainer.accelerator.unwrap_model(trainer.model), state)
    if sharded:
        # sharded weights: the Trainer gathers them (a collective, every process calls it). Not run here.
        trainer.save_model(str(final))
        if main:
            from safer_vlm.models.loading import save_processor

            save_processor(processor, final)
    elif main:
        export_policy(cfg, trainer.accelerator.unwrap_model(trainer.model), processor, final)
    if main:
        viewer = write_trajectory_viewer(cfg, run_dir)
        if progress:
            print(f"checkpoint: {run_dir / FINAL_NAME}  metrics: {run_dir / METRICS_NAME}  trajectories: {viewer}")
    _call(hooks.before_finish, run)
    state.wait_for_everyone()
    if state.num_processes > 1:
        state.destroy_process_group()  # no rank exits while another still talks to it
    return run_dir
