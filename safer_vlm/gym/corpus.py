"""Every text the gym can produce, for training the tiny model's tokenizer on exactly its world."""

from __future__ import annotations

from safer_vlm.gym.build import all_questions
from safer_vlm.gym.config import GymConfig
from safer_vlm.gym.responses import all_template_texts
from safer_vlm.gym.vocab import BACKGROUNDS, SHAPE_COLOURS, SHAPES
from safer_vlm.lexicon import OBJECT_WORDS
from safer_vlm.response_format import FORMAT_INSTRUCTION


def gym_corpus(cfg: GymConfig) -> list[str]:
    """All questions, all template responses (for the configured grounding), the words drawn on
    images and the format instruction, sorted and without repeats (the same list for every seed)."""
    texts = {q.text for q in all_questions()}
    if cfg.grounding == "background":
        facts = [{"colour": c} for c in BACKGROUNDS]
    else:
        facts = [{"colour": c, "shape": s} for c in SHAPE_COLOURS for s in SHAPES]
    reasoning = None
    if cfg.reasoning == "grounded":
        reasoning = [{"word": w, "colour": c} for w in [*OBJECT_WORDS, None] for c in BACKGROUNDS]
    texts.update(all_template_texts(facts, reasoning))
    if cfg.draw_labels:
        texts.update(w.upper() for w in OBJECT_WORDS)
    texts.add(FORMAT_INSTRUCTION)
    return sorted(texts)
