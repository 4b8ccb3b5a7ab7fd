"""Where the person and the model disagree: judged documents whose label contradicts the model's verdict at a
score threshold. A pure function over scores and labels (the labels come from ``storage.judgements``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from reranker.errors import InputError
from reranker.storage.judgements import document_hash
from reranker.storage.labels import LABELS

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Disagreement:
    """A scored document whose judgement contradicts the model's verdict at the threshold."""

    item: Any  # the scored document as given (e.g. an inspection.RankedRow)
    doc_hash: str
    score: float
    label: int
    kind: str  # "missed": judged relevant, scored low; "false alarm": judged not relevant, scored high

    @property
    def user_verdict(self) -> str:
        return LABELS[self.label]

    @property
    def model_verdict(self) -> str:
        return "not relevant" if self.kind == "missed" else "relevant"


def _text_of(item: Any) -> str:
    text = getattr(item, "text", None)
    return text if text is not None else item.document


def disagreements(judgements: Sequence[Any], labels: dict[str, int],
                  threshold: float = DEFAULT_THRESHOLD) -> list[Disagreement]:
    """The scored documents where the person and the model disagree, in the order given.

    ``judgements`` are scored documents with a ``score`` and their text as ``text`` (``inspection.RankedRow``)
    or ``document`` (``engine.Verdict``); ``labels`` maps document hash → label (``labels_for``).
    The model says "relevant" when score ≥ ``threshold``. A disagreement is a document judged relevant (2)
    that the model scored below the threshold ("missed"), or judged not relevant (0) that it scored at or
    above it ("false alarm"). "Partly relevant" (1) is the middle verdict and agrees with either side,
    so it never counts as a disagreement. Unjudged documents are skipped.
    """
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"The disagreement threshold must be a number between 0 and 1, got {threshold!r}.") from None
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"The disagreement threshold must be between 0 and 1, got {threshold}.")
    found = []
    for item in judgements:
        doc_hash = document_hash(_text_of(item))
        label = labels.get(doc_hash)
        if label == 2 and item.score < threshold:
            found.append(Disagreement(item, doc_hash, item.score, label, "missed"))
        elif label == 0 and item.score >= threshold:
            found.append(Disagreement(item, doc_hash, item.score, label, "false alarm"))
    return found
