"""How numbers are shown: one formatter for every table, report and panel, so a value reads the same everywhere."""

from __future__ import annotations

import pandas as pd

MISSING = "—"  # shown for a value that is not there (None, NaN)


def number(value: float | None, digits: int = 4, *, form: str | None = None) -> str:
    """``value`` with ``digits`` decimals, or written by ``form`` (e.g. ``"{:,.1f}"``); ``MISSING`` when absent."""
    if value is None or pd.isna(value):
        return MISSING
    return form.format(value) if form else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 3) -> str:
    """``value`` with its sign always shown (a true minus sign), ``digits`` decimals; ``MISSING`` when absent."""
    if value is None or pd.isna(value):
        return MISSING
    return f"{value:+.{digits}f}".replace("-", "−")
