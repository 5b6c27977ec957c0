"""The only module that imports TRL (pinned trl==1.16.0): our rollout and rewards behind GRPOTrainer.

How the pieces meet (all checked against trl 1.16.0's `GRPOTrainer`):
- the dataset rows carry the prompt as chat messages whose user turn holds `sample_id`, and the
  images as PIL objects, so TRL re-encodes the same pixels for the loss pass;
- `rollout_func(prompts, trainer)` receives the prompts already repeated `num_generations` times
  (consecutive), finds each group's `SafetySample` by `sample_id`, runs a `GroupRollout` on the
  trainer's current policy and converts the `RolloutResult` it returns, once (`trl_rollout_output`):
  `prompt_ids` (chat prompt with the image tokens expanded), `completion_ids`, `logprobs` and two
  extra keys TRL hands on to the reward functions: `rollout_row` (each row's `TrainingRow`) and
  `rollout_metrics` (the step's rollout metrics: a single value, not a list, which TRL's
  `_generate_and_score_completions` sets on every row); so no state is kept between `rollout_func`
  and the reward functions: what they need travels with TRL's batch;
- the reward is computed in the rollout; the TRL reward functions relay it: `structured_reward`
  returns each row's total and logs the rollout's metrics (TRL lets only reward functions log);
- `structured_reward` is the objective (weight 1); one reward function per rubric criterion,
  penalty and the gate has weight 0: TRL logs each as `rewards/<name>/mean` but, in
  `sum_then_normalize` aggregation, multiplies it by 0 before the advantages. A reward of None
  (unusable verdict) becomes NaN; a completion whose every reward function returned None gets
  advantage 0, so each criterion function returns None exactly when the total is None.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.errors import ConfigError, SaferVLMError
from safer_vlm.generation.base import Generator
from safer_vlm.judge.rubric import Rubric
from safer_vlm.rollout.answers import GroupRollout, RolloutResult, TrainingRow, token_logprob

#: Builds a Generator around the policy that is being trained, for one rollout call.
GeneratorFactory = Callable[[Any, Any], Generator]  # (unwrapped_model, trainer) -> Generator

SAMPLE_ID_KEY = "sample_id"
#: Extra keys of the `rollout_func` output, which TRL hands on to the reward functions.
ROW_KEY = "rollout_row"  # one `TrainingRow` per completion
METRICS_KEY = "rollout_metrics"  # the step's `RolloutResult.metrics`; not a list, so TRL gives it to every row


def sample_id_of(prompt: list[dict]) -> str:
    """The SafetySample id a dataset prompt was built from (kept on its user message)."""
    for message in prompt:
        if message.get("role") == "user" and message.get(SAMPLE_ID_KEY):
            return str(message[SAMPLE_ID_KEY])
    raise ValueError("prompt has no user message carrying a sample_id; build the dataset with build_dataset()")


def build_dataset(samples: list[SafetySample], render: Callable[[SafetySample], list[dict]], load_images: Callable[[SafetySample], list]):
    """A `datasets.Dataset` in TRL's conversational VLM format: `prompt`, `images`, `sample_id`.

    TRL renders `prompt` with `images` again for the loss pass, and the image features it computes
    must line up with the `prompt_ids` our rollout returns: so the prompt text here is exactly the
    chat the generators render (`render`), with its images moved to the `images` column (TRL puts
    them back before the text of the first user turn, where `build_messages` has them)."""
    from datasets import Dataset

    rows = []
    for s in samples:
        rows.append({"prompt": _text_only_chat(render(s), s.id), "images": load_images(s), SAMPLE_ID_KEY: s.id})
    return Dataset.from_list(rows)


def _text_only_chat(messages: list[dict], sample_id: str) -> list[dict]:
    out = []
    first_user = True
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            kinds = [p.get("type") for p in content]
            n_images = kinds.count("image")
            if n_images and (m.get("role") != "user" or not first_user or kinds[:n_images] != ["image"] * n_images):
                raise ValueError(f"sample {sample_id}: images must lead the first user turn for TRL's re-rendering")
            if any(k not in ("image", "text") for k in kinds):
                raise ValueError(f"sample {sample_id}: unsupported content part types {kinds}")
            text = "".join(p["text"] for p in content if p.get("type") == "text")
        else:
            text = str(content)
        msg = {"role": m["role"], "content": text}
        if m["role"] == "user" and first_user:
            msg[SAMPLE_ID_KEY] = sample_id
            first_user = False
        out.append(msg)
    if first_user:
        raise ValueError(f"sample {sample_id}: the chat has no user turn")
    return out


def make_rollout_func(
    samples: dict[str, SafetySample],
    group_rollout: GroupRollout,
    generator_factory: GeneratorFactory,
    on_result: Callable[[RolloutResult], None] | None = None,
    health: JudgeHealth | None = None,
) -> Callable[[list, Any], dict[str, Any]]:
    """TRL `rollout_func`: one group rollout per distinct prompt, flattened back in TRL's order.
    `on_result` is handed each step's `RolloutResult` (the trajectory log); `health` counts the
    judge's failures among its rows (the stop rule)."""

    def rollout_func(prompts: list, trainer: Any) -> dict[str, Any]:
        from trl.models import unwrap_model_for_generation

        n = trainer.num_generations if trainer.model.training else trainer.num_generations_eval
        if len(prompts) % n:
            raise ValueError(f"rollout got {len(prompts)} prompts, not a multiple of num_generations={n}")
        ids = [sample_id_of(p) for p in prompts]
        group_ids = ids[::n]
        for g, sid in enumerate(group_ids):
            if any(x != sid for x in ids[g * n : (g + 1) * n]):
                raise ValueError("rollout_func expects each prompt repeated num_generations times consecutively")
        missing = [sid for sid in group_ids if sid not in samples]
        if missing:
            raise KeyError(f"rollout_func: unknown sample ids {missing[:3]}")
        with unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            generation_kwargs=getattr(trainer, "generation_kwargs", None),
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as unwrapped:
            generator = generator_factory(unwrapped, trainer)
            result = group_rollout(generator, [samples[sid] for sid in group_ids], n)
        if on_result is not None:
            on_result(result)
        if health is not None:
            health.count(result.rows)
        return trl_rollout_output(result, n, group_ids)

    return rollout_func


def _logprob(value: Any) -> float:
    """One token's logprob as TRL's extract_logprobs writes it (a top-k list, or None for a NaN from
    vLLM) as a float: a missing one is NaN (`answers.token_logprob`)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return token_logprob(value)


def trl_rollout_output(result: RolloutResult, n: int, sample_ids: list[str] | None = None) -> dict[str, Any]:
    """The one conversion from a rollout's rows to TRL's `rollout_func` output.

    Rows come group after group, exactly `n` per group, all of a group carrying the original
    prompt's ids (a correction is attributed to the prompt it answers); `sample_ids`, when given,
    are the groups' prompts in TRL's order. `logprobs` is copied as the rollout set it (one float per
    token, NaN where unknown: `answers.sampling_logprobs`). Anything else is a bug upstream: refused."""
    rows = result.rows
    out: dict[str, Any] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], ROW_KEY: []}
    groups = [rows[k : k + n] for k in range(0, len(rows), n)]
    for group in groups:
        if len(group) != n or any(r.group_index != group[0].group_index for r in group):
            size = sum(1 for r in rows if r.group_index == group[0].group_index)
            raise ValueError(f"a rollout group has {size} answers; GRPO needs exactly {n}")
        if any(r.prompt_ids != group[0].prompt_ids for r in group):
            raise ValueError("answers in one group carry different prompt ids; all must be the original prompt's")
    if sample_ids is not None and [g[0].sample_id for g in groups] != list(sample_ids):
        raise ValueError(f"the rollout returned groups for {[g[0].sample_id for g in groups][:3]}..., not {list(sample_ids)[:3]}...")
    for row in rows:
        if len(row.logprobs) != len(row.completion_ids):
            raise ValueError(f"an answer has {len(row.logprobs)} logprobs for {len(row.completion_ids)} tokens")
        out["prompt_ids"].append(list(row.prompt_ids))
        out["completion_ids"].append(list(row.completion_ids))
        out["logprobs"].append(list(row.logprobs))
        out[ROW_KEY].append(row)
    out[METRICS_KEY] = dict(result.metrics)
    return out


def make_structured_reward() -> Callable[..., list[float | None]]:
    """The objective reward function: relays the reward the rollout computed, and logs the
    rollout's metrics and the judge's failures for this step."""

    def structured_reward(prompts, completions, rollout_row, rollout_metrics=None, log_metric=None, **kwargs):
        """The composed rubric reward of each row; None for an unusable verdict (counted, never 0)."""
        if log_metric is not None:
            for key, value in (rollout_metrics[0] if rollout_metrics else {}).items():
                log_metric(key, float(value))
            _log_judge_metrics(rollout_row, log_metric)
        return [row.reward for row in rollout_row]

    structured_reward.__name__ = "structured_reward"
    return structured_reward


def _log_judge_metrics(rows: list[TrainingRow], log_metric: Callable) -> None:
    rewards = [row.reward for row in rows]
    transport = sum(row.judge_error is not None for row in rows)
    failures = sum(r is None for r in rewards) - transport  # replied, but not as a verdict
    reflected = sum(row.reflected for row in rows)
    log_metric("judge/transport_errors", float(transport))
    log_metric("judge/transport_error_rate", transport / max(len(rewards), 1))
    log_metric("judge/parse_failures", float(failures))
    log_metric("judge/parse_failure_rate", failures / max(len(rewards), 1))
    log_metric("rollout/reflected_frac", reflected / max(len(rewards), 1))
    unsafe = [row.unsafe for row in rows if row.unsafe is not None]
    if unsafe:
        # the rows this step trains on (group members), not the policy's originals: see
        # rollout/originals_unsafe_rate for those
        log_metric("judge/trained_rows_unsafe_rate", sum(unsafe) / len(unsafe))


class JudgeFailure(SaferVLMError):
    """The judge failed on too many answers: training stopped after a checkpoint."""


class JudgeHealth:
    """Counts, per optimizer step, the answers with no usable verdict: transport errors (no reply:
    `Verdict.error`) and parse failures (a reply that is not a verdict), kept apart. Training on
    them is training on nothing (reward None, advantage 0), so more than `max_failure_rate` of the
    answers over the last `window` steps stops the run (`judge_health_callback`)."""

    def __init__(self, max_failure_rate: float, window: int) -> None:
        from collections import deque

        self.max_failure_rate = max_failure_rate
        self.window = window
        self.pending = [0, 0, 0]  # transport, parse, answers since the last step ended
        self.steps: Any = deque(maxlen=window)
        self.first_error: str | None = None
        self.stopped: str | None = None  # the one-line reason, once the rule fired

    def count(self, rows: list[TrainingRow]) -> None:
        for row in rows:
            self.pending[2] += 1
            if row.judge_error is not None:
                self.pending[0] += 1
                self.first_error = self.first_error or f"transport error: {row.judge_error}"
            elif row.reward is None and row.unparsed_reason is not None:
                self.pending[1] += 1
                self.first_error = self.first_error or f"unparseable reply: {row.unparsed_reason}"

    def end_step(self, step: int) -> str | None:
        """Close one optimizer step; the stop message when the rule fires, else None."""
        if self.pending[2]:
            self.steps.append(tuple(self.pending))
        self.pending = [0, 0, 0]
        if len(self.steps) < self.window:
            return None
        transport = sum(s[0] for s in self.steps)
        parse = sum(s[1] for s in self.steps)
        total = sum(s[2] for s in self.steps)
        if total == 0 or (transport + parse) / total <= self.max_failure_rate:
            return None
        first = " ".join(str(self.first_error).split())[:300]
        return (
            f"training stopped at step {step}: the judge gave no usable verdict for {transport + parse} of the "
            f"last {total} answers over {len(self.steps)} steps ({transport} transport errors, {parse} "
            f"unparseable replies; judge.max_failure_rate={self.max_failure_rate}); first error: {first}; "
            "a checkpoint was saved: fix it and rerun with --resume"
        )


def judge_health_callback(health: JudgeHealth):
    """A TrainerCallback applying `JudgeHealth`'s rule after each optimizer step: when it fires, the
    Trainer saves a checkpoint of this step and stops; `raise_if_stopped` then ends the command."""
    from transformers import TrainerCallback

    class _JudgeHealth(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            message = health.end_step(state.global_step)
            if message is not None:
                health.stopped = message
                control.should_save = True
                control.should_training_stop = True

    return _JudgeHealth()


def raise_if_stopped(health: JudgeHealth | None) -> None:
    if health is not None and health.stopped:
        raise JudgeFailure(health.stopped)


def _part_reward(func_name: str, part_key: str) -> Callable[..., list[float | None]]:
    def reward(prompts, completions, rollout_row, **kwargs) -> list[float | None]:
        return [None if row.reward is None else row.reward_parts.get(part_key) for row in rollout_row]

    reward.__name__ = func_name
    reward.__qualname__ = func_name
    reward.__doc__ = f"Logged only (weight 0): `{part_key}` of the reward breakdown."
    return reward


def reward_functions(rubric: Rubric) -> tuple[list[Callable[..., list[float | None]]], list[float]]:
    """The objective plus one weight-0 function per criterion score, penalty and the gate."""
    funcs: list[Callable[..., list[float | None]]] = [make_structured_reward()]
    for name in rubric.scored_criteria:
        funcs.append(_part_reward(name, f"score/{name}"))
    for name in rubric.penalties:
        funcs.append(_part_reward(f"penalty_{name}", f"penalty/{name}"))
    if rubric.gate.enabled:
        funcs.append(_part_reward("safety_gate", "gate"))
    weights = [1.0] + [0.0] * (len(funcs) - 1)
    return funcs, weights


class TRLVLLMGenerator:
    """Generator on TRL's own vLLM engine (`grpo.use_vllm`, server or colocate mode), so reflection
    prompts are sampled by the same engine and weights as the originals. TRL syncs the weights before
    it calls `rollout_func`. Prompts are tokenised exactly as TRL does for VLMs (image tokens expanded)
    and passed with their PIL images.

    Not tested on this CPU-only project machine (no vLLM here); see README "On a GPU cluster".
    """

    def __init__(self, trainer: Any, processor: Any, system_prompt: str | None = None) -> None:
        self.trainer = trainer
        self.processor = processor
        self.system_prompt = system_prompt

    def generate(self, requests: list, n: int = 1) -> list[list[Any]]:
        from safer_vlm.generation.base import Generation
        from safer_vlm.generation.messages import build_messages, load_message_images, render_prompt

        if not requests:
            return []
        prompt_ids: list[list[int]] = []
        images: list[list | None] = []
        for request in requests:
            chat = build_messages(request, system_prompt=self.system_prompt)
            pictures = load_message_images(chat)  # loaded once: tokenised with them, sent with them
            enc = self.processor(text=[render_prompt(self.processor, chat)], images=pictures or None)
            prompt_ids.append(list(enc["input_ids"][0]))
            images.append(pictures or None)
        repeated_ids = [ids for ids in prompt_ids for _ in range(n)]
        repeated_images = [im for im in images for _ in range(n)] if any(images) else None
        _, completion_ids, logprobs, _ = self.trainer.vllm_generation.generate(
            prompts=repeated_ids, images=repeated_images, num_generations=n
        )
        tokenizer = self.processor.tokenizer
        out: list[list[Generation]] = [[] for _ in requests]
        for k, ids in enumerate(completion_ids):
            # TRL's extract_logprobs turns a NaN logprob into None: NaN again (ratio 1, like a correction's)
            token_logprobs = None if logprobs is None else [_logprob(lp) for lp in logprobs[k]]
            out[k // n].append(
                Generation(
                    text=tokenizer.decode(ids, skip_special_tokens=True),
                    completion_ids=list(ids),
                    logprobs=token_logprobs,
                    prompt_ids=prompt_ids[k // n],
                )
            )
        return out


def check_vllm_rollout(grpo: Any, reflection: bool, num_processes: int) -> None:
    """Reflection prompts differ in number per process; TRL's vLLM server mode slices one gathered batch
    evenly across processes, so uneven reflection batches would be misassigned. Refuse that setup."""
    from safer_vlm.errors import ConfigError

    if grpo.use_vllm and grpo.vllm_mode == "server" and reflection and num_processes > 1:
        raise ConfigError(
            "rollout.reflection with grpo.vllm_mode=server needs a single training process; "
            "use grpo.vllm_mode=colocate for multi-GPU training with reflection"
        )


def make_grpo_config(grpo: Any, output_dir: Path, use_cpu: bool, report_to: str = "none"):
    """Translate our GRPOSection into TRL's GRPOConfig (bf16 is forced off on CPU)."""
    from trl import GRPOConfig

    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        learning_rate=grpo.learning_rate,
        lr_scheduler_type=grpo.lr_scheduler_type,
        warmup_steps=grpo.warmup_steps,
        weight_decay=grpo.weight_decay,
        max_grad_norm=grpo.max_grad_norm,
        num_generations=grpo.num_generations,
        temperature=grpo.temperature,
        top_p=grpo.top_p,
        top_k=grpo.top_k,
        max_completion_length=grpo.max_completion_length,
        per_device_train_batch_size=grpo.per_device_train_batch_size,
        gradient_accumulation_steps=grpo.gradient_accumulation_steps,
        max_steps=grpo.max_steps,
        num_train_epochs=grpo.num_train_epochs,
        beta=grpo.beta,
        loss_type=grpo.loss_type,
        scale_rewards=grpo.scale_rewards,
        epsilon=grpo.epsilon,
        epsilon_high=grpo.epsilon_high,
        num_iterations=grpo.num_iterations,
        mask_truncated_completions=grpo.mask_truncated_completions,
        multi_objective_aggregation="sum_then_normalize",
        seed=grpo.seed,
        data_seed=grpo.seed,
        logging_steps=grpo.logging_steps,
        save_steps=grpo.save_steps,
        save_total_limit=grpo.save_total_limit,
        use_vllm=grpo.use_vllm,
        vllm_mode=grpo.vllm_mode,
        vllm_gpu_memory_utilization=grpo.vllm_gpu_memory_utilization,
        vllm_importance_sampling_correction=grpo.vllm_importance_sampling_correction,
        bf16=grpo.bf16 and not use_cpu,
        use_cpu=use_cpu,
        log_completions=grpo.log_completions,
        report_to=report_to,
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        save_only_model=False,
    )
    if grpo.gradient_checkpointing:
        kwargs["gradient_checkpointing"] = True
    if getattr(grpo, "cache_implementation", None):
        kwargs["cache_implementation"] = grpo.cache_implementation  # TRL's own generation uses it too
    if grpo.vllm_server_base_url:
        kwargs["vllm_server_base_url"] = grpo.vllm_server_base_url
    return GRPOConfig(**kwargs)


#: Logged values that must stay finite: once they are not, the weights are being corrupted.
DIVERGENCE_KEYS = ("loss", "grad_norm")


def metrics_callback(path: Path, on_step: Callable[[int, dict], None] | None = None):
    """A TrainerCallback appending every TRL log (one JSON object per logged step) to `path`, and
    stopping the run with a clear error at the first non-finite loss or gradient norm (the next
    optimizer step would spread NaN into every weight, and the next rollout would fail obscurely)."""
    from transformers import TrainerCallback

    from safer_vlm.errors import SaferVLMError

    class _MetricsToJsonl(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs:
                return
            record = {"step": state.global_step, **{k: _plain(v) for k, v in logs.items()}}
            if getattr(state, "is_world_process_zero", True):  # one row per step however many processes train
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
                if on_step is not None:
                    on_step(state.global_step, record)
            bad = [k for k in DIVERGENCE_KEYS if k in logs and not _finite(logs[k])]
            if bad:
                raise SaferVLMError(
                    f"training diverged at step {state.global_step}: {', '.join(bad)} is not finite "
                    f"(see {path}); lower grpo.learning_rate, or check the precision settings (grpo.bf16)"
                )

    return _MetricsToJsonl()


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return True


def _plain(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def step_callback(on_step_end: Callable[[int, int], None]):
    """A TrainerCallback reporting (global_step, max_steps) after each optimizer step (progress bars)."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            on_step_end(state.global_step, state.max_steps)

    return _Progress()


def make_trainer(
    model: Any,
    processor: Any,
    dataset: Any,
    args: Any,
    rollout_func: Callable,
    rubric: Rubric,
    callbacks: list | None = None,
    peft_config: Any = None,
):
    """Assemble the GRPOTrainer with our rollout, the structured reward and the logged criteria.
    With `peft_config` TRL wraps the policy in LoRA adapters (reference = adapters disabled)."""
    import logging
    import os

    from trl import GRPOTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    funcs, weights = reward_functions(rubric)
    args.reward_weights = weights
    from transformers.trainer_callback import PrinterCallback

    # `model_init_kwargs` (the reference model's attention) is used for the reference model, though
    # TRL warns that it is ignored for an instantiated policy: drop that one misleading line.
    trl_logger = logging.getLogger("trl.trainer.grpo_trainer")
    quiet = _DropMessage("You passed `model_init_kwargs`")
    trl_logger.addFilter(quiet)
    try:
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=funcs,
            args=args,
            train_dataset=dataset,
            processing_class=processor,
            rollout_func=rollout_func,
            callbacks=callbacks or [],
            peft_config=peft_config,
        )
    finally:
        trl_logger.removeFilter(quiet)
    trainer.remove_callback(PrinterCallback)  # metrics go to metrics.jsonl and our progress bar
    install_exact_resume(trainer)
    # TRL dumps a whole batch row (images included) when no reward could be made; the judge's
    # failures are counted in judge/* metrics and stop the run (JudgeHealth), so drop that dump.
    if not any(getattr(f, "prefix", None) == NO_REWARD_DUMP for f in trl_logger.filters):
        trl_logger.addFilter(_DropMessage(NO_REWARD_DUMP))
    return trainer


NO_REWARD_DUMP = "All reward functions returned None"


class _DropMessage:
    """A logging filter dropping records that contain `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def filter(self, record) -> bool:
        return self.prefix not in str(record.getMessage())


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest *complete* TRL checkpoint under `run_dir` (for --resume), or None.

    A run killed while saving leaves a checkpoint folder without `trainer_state.json` (the Trainer
    writes it last); such folders are skipped, so resuming never starts from half-written state."""
    if not run_dir.is_dir():
        return None
    found = []
    for child in run_dir.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("checkpoint-") and name.removeprefix("checkpoint-").isdigit():
            found.append((int(name.removeprefix("checkpoint-")), child))
    for _, child in sorted(found, reverse=True):
        if (child / "trainer_state.json").is_file():
            return str(child)
        print(f"skipping incomplete checkpoint {child} (no trainer_state.json: the run stopped while saving it)")
    return None


class ResumeError(ConfigError):
    """A checkpoint that cannot restore this run's weights: refused (one line, exit 2), never warned."""


def checkpoint_key_map(model: Any) -> dict[str, str]:
    """{name in a `save_pretrained` checkpoint: name in `model.state_dict()`}.

    Why: transformers' `save_pretrained` writes Qwen2.5-VL weights under the checkpoint names
    (`model.layers.*`, `visual.*`, reverting the conversions `from_pretrained` applied), while the
    Trainer's resume reads them back with a raw `load_state_dict(strict=False)` under the module
    names (`model.language_model.*`, `model.visual.*`): nothing matched and every weight silently
    stayed at its initial value. This mirrors the save path (`revert_weight_conversion`, pinned
    transformers) so each saved name maps back to the module's own name."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import PrefixChange, WeightRenaming, apply_renamings

    conversions = getattr(model, "_weight_conversions", None)
    if conversions is None:  # built in memory: save_pretrained uses the default mapping, minus prefix changes
        conversions = [c for c in get_model_conversion_mapping(model, add_legacy=False) if not isinstance(c, PrefixChange)]
    reverse = [c.reverse_transform() for c in (conversions or [])[::-1]]
    if any(not isinstance(r, WeightRenaming) for r in reverse):
        raise ResumeError(f"{type(model).__name__} saves converted (not just renamed) weights; exact resume cannot map them")
    return {apply_renamings(name, reverse): name for name in model.state_dict()}


def _read_safetensors(folder: Path) -> dict[str, Any] | None:
    """Every tensor of a (possibly sharded) safetensors checkpoint, on the CPU; None without one."""
    from safetensors.torch import load_file

    single = folder / "model.safetensors"
    if single.is_file():
        return load_file(str(single), device="cpu")
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return None
    shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    out: dict[str, Any] = {}
    for shard in shards:
        out.update(load_file(str(folder / shard), device="cpu"))
    return out


def _trainable(model: Any) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def _refuse(checkpoint: Path, missing: list[str], total: int) -> None:
    raise ResumeError(
        f"cannot resume from {checkpoint}: it holds no value for {len(missing)} of the {total} trainable "
        f"weights (e.g. {missing[0]}), so resuming would silently restart them from their initial values"
    )


def load_full_weights(model: Any, checkpoint: str | Path) -> bool:
    """Load a full-weight checkpoint into `model` under the module's own names; False when the folder
    holds no full weights (an adapter checkpoint). Refuses (ResumeError) when any trainable weight of
    `model` is not in the checkpoint, or the checkpoint holds weights `model` does not have."""
    folder = Path(checkpoint)
    saved = _read_safetensors(folder)
    if saved is None:
        return False
    names = checkpoint_key_map(model)
    renamed = {names.get(k, k): v for k, v in saved.items()}
    trainable = _trainable(model)
    missing = [n for n in trainable if n not in renamed]
    if missing:
        _refuse(folder, missing, len(trainable))
    result = model.load_state_dict(renamed, strict=False)
    if result.unexpected_keys:
        raise ResumeError(
            f"cannot resume from {folder}: it holds {len(result.unexpected_keys)} weights this model does not "
            f"have (e.g. {result.unexpected_keys[0]}); it was written by another model"
        )
    return True


def check_adapter_restored(model: Any, checkpoint: str | Path) -> None:
    """After the Trainer loaded a LoRA checkpoint: every trainable adapter weight now equals the
    checkpoint's (peft maps the names); refuses (ResumeError) otherwise."""
    import torch
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(checkpoint)
    path = folder / "adapter_model.safetensors"
    if not path.is_file():
        raise ResumeError(f"cannot resume from {folder}: it holds neither model weights nor a LoRA adapter")
    saved = load_file(str(path), device="cpu")
    current = get_peft_model_state_dict(model)
    trainable = _trainable(model)
    differ = [k for k, v in current.items() if k not in saved or not torch.equal(v.detach().cpu(), saved[k])]
    if len(current) < len(trainable) or differ:
        _refuse(folder, differ or trainable, len(trainable))


def install_exact_resume(trainer: Any) -> None:
    """Make `trainer.train(resume_from_checkpoint=...)` restore the weights exactly (see
    `checkpoint_key_map`): full weights through `load_full_weights`, LoRA adapters through the
    Trainer's peft path, then checked by `check_adapter_restored`. Optimizer, scheduler, RNG states
    and the data position are restored by the Trainer itself from the same folder."""
    from safer_vlm.train.lora import is_peft_model

    original = trainer._load_from_checkpoint

    def load(resume_from_checkpoint: str, model: Any = None) -> None:
        target = trainer.model if model is None else model
        if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False):
            original(resume_from_checkpoint, model)  # sharded states: the Trainer's own loaders (not run here)
            return
        if is_peft_model(target):
            original(resume_from_checkpoint, model)
            check_adapter_restored(target, resume_from_checkpoint)
            return
        if not load_full_weights(target, resume_from_checkpoint):
            raise ResumeError(f"cannot resume from {resume_from_checkpoint}: it holds no model.safetensors")

    trainer._load_from_checkpoint = load
