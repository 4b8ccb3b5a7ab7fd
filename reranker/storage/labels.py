"""The label scale people judge on, defined once: 0 not relevant, 1 partly relevant, 2 relevant; and which labels
the binary metrics (MRR, MAP, P@k) count as relevant (``relevant_from``)."""

from __future__ import annotations

import math
from typing import Any

from reranker.errors import InputError

LABELS = {2: "relevant", 1: "partly relevant", 0: "not relevant"}
RELEVANT_FROM = {1: "partly relevant (1) and relevant (2)", 2: "relevant (2) only"}  # choices of relevant_from
DEFAULT_RELEVANT_FROM = 1  # "partly relevant" counts


def scale() -> str:
    """The scale in words: "0 = not relevant, 1 = partly relevant, 2 = relevant"."""
    return ", ".join(f"{k} = {v}" for k, v in sorted(LABELS.items()))


def check_label(label: Any) -> int:
    """``label`` (a number or numeric text: 2, "2", 2.0) as 0, 1 or 2, or an ``InputError`` naming the scale."""
    try:
        number = float(label) if not isinstance(label, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or int(number) not in LABELS:
        raise InputError(f"A label must be 0, 1 or 2 ({scale()}), got {label!r}.")
    return int(number)


def check_relevant_from(relevant_from: Any) -> int:
    """``relevant_from`` as 1 or 2, or an ``InputError`` that says what each means."""
    if isinstance(relevant_from, bool) or relevant_from not in RELEVANT_FROM:
        raise InputError(f"relevant_from must be 1 (partly relevant counts) or 2 (only relevant), "
                         f"got {relevant_from!r}.")
    return int(relevant_from)
