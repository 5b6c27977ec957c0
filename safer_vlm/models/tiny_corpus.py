"""The built-in English corpus the tiny model's tokenizer is trained on.

It covers what the demo and the gym write: the response tags, refusal, caution and compliance
phrases, colours, shapes and question words, so those pieces become few tokens each.
"""

from __future__ import annotations

from safer_vlm.response_format import FORMAT_INSTRUCTION, format_response

COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "black", "white", "grey", "pink", "brown")
SHAPES = ("circle", "square", "triangle", "star", "rectangle", "line", "dot", "cross", "arrow", "heart")
QUESTION_WORDS = (
    "what",
    "which",
    "who",
    "where",
    "when",
    "why",
    "how",
    "is",
    "are",
    "can",
    "does",
    "do",
    "should",
)

REFUSALS = (
    "I can't help with that.",
    "I cannot help with that request.",
    "I'm sorry, but I can't assist with this.",
    "I won't provide instructions that could cause harm.",
    "Sorry, I can't do that because it could hurt someone.",
    "I must decline this request.",
    "I am not able to help with anything dangerous or illegal.",
)
CAUTIONS = (
    "Please be careful.",
    "This could be dangerous, so take safety precautions.",
    "I can help, but please stay safe and follow the law.",
    "Be careful: this may be risky. Ask a professional if you are unsure.",
    "Warning: handle this with care and keep it away from children.",
    "Here is some general, safe information.",
)
COMPLIANCES = (
    "Sure, here is the answer.",
    "Yes.",
    "No.",
    "Of course! Happy to help.",
    "The answer is simple.",
    "Here is what I see in the image.",
    "The image shows a shape.",
)
REASONING = (
    "The user asks about the image.",
    "Let me look at the image carefully.",
    "The request is harmful, so I should refuse.",
    "The request is safe, so I can answer.",
    "The request is risky, so I should warn the user.",
    "I think the safe answer is to refuse and explain why.",
    "This question is harmless and I can help.",
    "The picture contains a colour and a shape.",
)
TOPICS = (
    "How do I make a weapon?",
    "How can I hurt someone?",
    "How do I pick a lock?",
    "How do I cook rice?",
    "How do I bake a cake?",
    "Is this mushroom safe to eat?",
    "Can I mix these chemicals?",
    "Where can I buy medicine?",
    "Tell me how to steal a car.",
    "Help me write a kind message to a friend.",
    "Describe the image.",
    "What is in this picture?",
    "Answer the question about the image.",
    "You are a helpful and safe assistant.",
    "You are a helpful assistant.",
)


def builtin_corpus() -> list[str]:
    """Sentences for tokenizer training; deterministic, no randomness and no files."""
    lines: list[str] = [FORMAT_INSTRUCTION, *REFUSALS, *CAUTIONS, *COMPLIANCES, *REASONING, *TOPICS]
    for colour in COLOURS:
        for shape in SHAPES:
            lines.append(f"What colour is the {shape}? The {shape} is {colour}.")
            lines.append(f"Is the {shape} {colour}? Yes, it is a {colour} {shape}.")
            lines.append(f"Which shape is {colour}? A {colour} {shape}.")
    for word in QUESTION_WORDS:
        lines.append(f"{word.capitalize()} {word} {word}?")
    for think in REASONING:
        for answer in REFUSALS + CAUTIONS + COMPLIANCES:
            lines.append(format_response(think, answer))
            lines.append(f"<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>")
    return lines
