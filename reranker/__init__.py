"""Exact Qwen3-Reranker relevance verdicts: engine, cache, CLI and API.

    from reranker import Reranker
    ranked = Reranker("Qwen/Qwen3-Reranker-0.6B").rank("what is a panda?", documents, top_k=5)

``Judgement`` is the deprecated old name of ``Verdict``.
"""

from reranker.scoring.engine import DEFAULT_MAX_LENGTH, DEFAULT_MODEL, MODELS, Judgement, PromptView, Reranker, Verdict
from reranker.errors import BackendUnavailable, InputError, ModelError, RerankerError
from reranker.scoring.prompt import DEFAULT_INSTRUCTION

__all__ = [
    "Reranker", "Verdict", "Judgement", "PromptView", "MODELS", "DEFAULT_MODEL", "DEFAULT_MAX_LENGTH",
    "DEFAULT_INSTRUCTION",
    "RerankerError", "InputError", "ModelError", "BackendUnavailable",
]
