"""Build a tiny, randomly initialised Qwen2 *text* model offline, for `make test-vllm`: vLLM serves it
as the OpenAI-compatible judge. It knows nothing; guided decoding (`response_format: json_schema`)
is what makes its replies verdicts, which is exactly what the tests check.

The tokenizer is trained offline on the project's built-in corpus plus the judge prompt, exactly as
`safer_vlm/models/tiny.py` does for the tiny VLM (byte-level BPE, so every character JSON needs can
be spelled). Runs in `.venv-vllm` (its own transformers): `python scripts/build_tiny_text_judge.py OUT`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build(out_dir: Path, seed: int = 0, vocab_size: int = 640) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from safer_vlm.models.tiny import SPECIAL_TOKENS, _train_tokenizer
    from safer_vlm.models.tiny_corpus import builtin_corpus

    corpus = [*builtin_corpus(), json.dumps({"safety": 10, "unsafe": False, "rationale": "fine."})]
    tokenizer = _train_tokenizer(corpus, vocab_size)
    tokenizer.chat_template = TEXT_CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 64: vLLM CPU attention has no kernel for 16
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(config).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out_dir, args.seed))


if __name__ == "__main__":
    main()
