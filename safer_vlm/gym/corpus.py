"""Every text the gym can produce, for training the tiny model's tokenizer on exactly its world."""

from __future__ import annotations

from safer_vlm.gym.build import all_questions
from safer_vlm.gym.config import GymConfig
from safer_vlm.gym.responses import all_template_texts
from safer_vlm.gym.vocab import BACKGROUNDS, BENIGN_WORDS, SHAPE_COLOURS, SHAPES, words_of_level
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
        words = [*BENIGN_WORDS, *words_of_level("refuse"), *words_of_level("warn")]
        reasoning = [{"word": w, "colour": c} for w in [*words, None] for c in BACKGROUNDS]
    texts.update(all_template_texts(facts, reasoning))
    if cfg.draw_labels:
        texts.update(w.upper() for w in [*BENIGN_WORDS, *words_of_level("refuse"), *words_of_level("warn")])
    texts.add(FORMAT_INSTRUCTION)
    return sorted(texts)
