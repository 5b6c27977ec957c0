"""A transformers VLM as judge, in-process: greedy generation with the rubric prompt, replies read
by `parse_verdict`. For offline evaluation and small setups; a served judge scales better."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from safer_vlm.errors import SaferVLMError
from safer_vlm.judge.base import JudgeItem, Verdict
from safer_vlm.judge.cache import JudgeCache, cache_key, file_sha256
from safer_vlm.judge.config import HFLocalJudgeConfig
from safer_vlm.judge.openai_compat import error_verdict
from safer_vlm.judge.parse import parse_verdict
from safer_vlm.judge.rubric import Rubric


class HFLocalJudge:
    """Loads the model on first use (`load_policy`, safetensors only) and judges in batches of
    `batch_size` through `HFGenerator` at temperature 0; generation runs off the event loop."""

    def __init__(
        self, cfg: HFLocalJudgeConfig, rubric: Rubric, model: Any = None, processor: Any = None
    ) -> None:
        self.cfg = cfg
        self.rubric = rubric
        self.judge_id = cfg.judge_id or f"hf:{Path(cfg.model_path).name}"
        self.cache = JudgeCache(cfg.cache_dir) if cfg.cache_dir is not None else None
        self._model, self._processor = model, processor
        self._generator: Any = None
        self._lock = threading.Lock()  # one generation at a time on the shared model
        self._system = rubric.render_system_prompt()
        self._fingerprint = rubric.fingerprint()

    def _ensure_generator(self) -> Any:
        if self._generator is None:
            from safer_vlm.generation.hf_generator import HFGenerator
            from safer_vlm.models.loading import load_policy

            if self._model is None:
                self._model, self._processor = load_policy(self.cfg.model_path, device=self.cfg.device)
            self._generator = HFGenerator(
                self._model,
                self._processor,
                max_new_tokens=self.cfg.max_new_tokens,
                temperature=0.0,
                batch_size=self.cfg.batch_size,
            )
        return self._generator

    def _prepare(self, item: JudgeItem) -> tuple[tuple[dict, ...], str]:
        from safer_vlm.data.images import load_image

        paths = item.image_paths
        for p in paths:
            load_image(p)  # a broken image fails this item here, not the whole batch later
        text = self.rubric.render_user_prompt(item.sample.question, item.response)
        content = [{"type": "image", "path": str(p)} for p in paths] + [{"type": "text", "text": text}]
        chat = ({"role": "system", "content": self._system}, {"role": "user", "content": content})
        params = {"model": self.cfg.model_path, "max_new_tokens": self.cfg.max_new_tokens, "greedy": True}
        key = cache_key(
            self.judge_id,
            self._fingerprint,
            [self._system, text],
            [file_sha256(p) for p in paths],
            item.response,
            params,
        )
        return chat, key

    def _generate(self, chats: list[tuple[dict, ...]], items: list[JudgeItem]) -> list[str]:
        from safer_vlm.generation.base import GenRequest

        requests = [
            GenRequest(sample=it.sample, messages=chat) for it, chat in zip(items, chats, strict=True)
        ]
        return [gens[0].text for gens in self._ensure_generator().generate(requests, n=1)]

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]:
        """One verdict per item, in order; replies that are not verdicts are parse failures."""
        verdicts: list[Verdict | None] = [None] * len(batch)
        todo: list[tuple[int, tuple[dict, ...], str]] = []
        for i, item in enumerate(batch):
            try:
                chat, key = self._prepare(item)
            except (SaferVLMError, OSError, ValueError) as exc:
                verdicts[i] = error_verdict(self.judge_id, "input", f"item {item.sample.id!r}: {exc}")
                continue
            raw = self.cache.get(key) if self.cache is not None else None
            if raw is not None:
                verdicts[i] = parse_verdict(raw, self.rubric, self.judge_id)
                verdicts[i].extra["cached"] = True  # type: ignore[union-attr]
            else:
                todo.append((i, chat, key))
        if todo:
            texts = await asyncio.to_thread(
                self._generate, [c for _, c, _ in todo], [batch[i] for i, _, _ in todo]
            )
            for (i, _, key), text in zip(todo, texts, strict=True):
                verdict = parse_verdict(text, self.rubric, self.judge_id)
                if self.cache is not None:
                    self.cache.put(key, text, verdict)
                verdicts[i] = verdict
        done = [v for v in verdicts if v is not None]
        assert len(done) == len(batch)
        return done
