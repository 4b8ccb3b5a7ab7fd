"""Any Sentence-Transformers ``CrossEncoder`` as a bake-off contender: classic cross-encoders (BERT-style
sequence classifiers, bge-reranker-v2-m3, the Ettin rerankers) and LLM rerankers that ship as ``Transformer`` +
``LogitScore`` with their own chat template (Qwen3-VL-Reranker, mxbai-rerank-v2, zerank-2, ...).

The score is what ``CrossEncoder.predict`` returns with the model's own activation (a sigmoid for one-label
models), so it orders documents as the model's authors intend. :meth:`CrossEncoderContender.prompt` shows the
exact text the model reads for a pair: the tokens Sentence Transformers builds (through the chat template for a
LogitScore model), decoded, so a template that drops the query or the document is visible.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from reranker.bakeoff.contenders import CachedContender, card_licence
from reranker.errors import InputError, ModelError

DEFAULT_BATCH = 32


def _fingerprint(model: str, revision: str | None) -> str:
    """A local folder's files (names, sizes, times), or the hub id and revision."""
    path = Path(model)
    if not path.is_dir():
        return f"{model}@{revision or 'main'}"
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{path.resolve()}@{digest.hexdigest()[:16]}"


class CrossEncoderContender(CachedContender):
    """A Sentence-Transformers ``CrossEncoder`` (hub id or local folder)."""

    @property
    def precision(self) -> str:
        """The dtype the weights were loaded in (float32, bfloat16, ...)."""
        return str(next(self.encoder.parameters()).dtype).removeprefix("torch.")

    def __init__(self, name: str, model: str, *, revision: str | None = None, max_length: int | None = None,
                 batch_size: int = DEFAULT_BATCH, device: str | None = None, cache=None,
                 price_per_1k_pairs: float | None = None, price_per_hour: float | None = None):
        try:
            from sentence_transformers import CrossEncoder
            from sentence_transformers.cross_encoder.modules import LogitScore
        except ImportError as exc:
            raise ModelError("sentence-transformers is not installed: `pip install sentence-transformers`.") from exc
        self.name, self.model, self.revision, self.batch_size = name, model, revision, batch_size
        self.price_per_1k_pairs, self.price_per_hour = price_per_1k_pairs, price_per_hour
        self.cache = cache
        try:
            self.encoder = CrossEncoder(model, revision=revision, max_length=max_length, device=device or _device())
        except (OSError, ValueError) as exc:
            raise ModelError(f"Cannot load the cross-encoder {model!r}: {str(exc).splitlines()[0]}") from exc
        logit_score = next((m for m in self.encoder if isinstance(m, LogitScore)), None)
        if logit_score is not None and "message" not in getattr(self.encoder[0], "modality_config", {}):
            raise ModelError(f"{model!r} is an LLM reranker (LogitScore) without a chat template that carries the "
                             "query and the document: it would score the two texts run together. Give the model "
                             "its chat_template.jinja.")
        self.kind = "LLM reranker (LogitScore)" if logit_score is not None else "cross-encoder"
        self.tokens = (None if logit_score is None else
                       (logit_score.true_token_id, logit_score.false_token_id))
        self._id = "|".join(["cross-encoder", _fingerprint(model, revision), str(self.encoder.max_seq_length),
                             str(getattr(self.encoder.tokenizer, "chat_template", None) or ""),
                             type(self.encoder.activation_fn).__name__, str(self.tokens)])

    @property
    def cache_id(self) -> str:
        return self._id

    def compute(self, query: str, documents: Sequence[str]) -> np.ndarray:
        return np.asarray(self.encoder.predict([(query, d) for d in documents], batch_size=self.batch_size,
                                               show_progress_bar=False, convert_to_numpy=True), dtype=float)

    def prompt_ids(self, query: str, document: str) -> list[int]:
        """The token ids the model reads for one pair (padding removed), as Sentence Transformers builds them."""
        if not isinstance(query, str) or not isinstance(document, str):
            raise InputError("The prompt needs a query and a document.")
        features = self.encoder.preprocess([(query, document)])
        ids = features["input_ids"][0]
        mask = features.get("attention_mask")
        if mask is not None:
            ids = ids[mask[0].bool()]
        return ids.tolist()

    def prompt(self, query: str, document: str) -> str:
        return self.encoder.tokenizer.decode(self.prompt_ids(query, document), skip_special_tokens=False)

    def licence(self) -> str | None:
        return card_licence(self.model, self.revision)

    def describe(self) -> str:
        extra = f" · yes/no token ids {self.tokens}" if self.tokens else ""
        return f"{self.kind}: {self.model} · max {self.encoder.max_seq_length} tokens{extra}"


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
