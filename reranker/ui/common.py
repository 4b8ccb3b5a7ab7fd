"""What the page's tabs share: messages and errors for toasts, upload paths, the export folder's pruning, and
the checks that turn widget values (k, model settings) into typed values or a message that says what to fix."""

from __future__ import annotations

import html
import time
from pathlib import Path

import gradio as gr

from reranker.errors import InputError, RerankerError
from reranker.ranking.metrics import RELEVANT_FROM
from reranker.scoring.model_holder import ModelSettings
from reranker.scoring.prompt import INSTRUCTION_PRESETS

NO_ID = "(row number)"
DEFAULT_PRESET = next(iter(INSTRUCTION_PRESETS))


def message(text: str) -> str:
    """Text for a toast: Gradio renders toast messages as HTML, and ours can quote file names and columns."""
    return html.escape(text, quote=False)


def error(exc: RerankerError) -> gr.Error:
    """``exc`` as a toast titled by its kind (input or model problem)."""
    title = "Please check the input" if isinstance(exc, InputError) else "Model problem"
    return gr.Error(message(str(exc)), title=title)


def prune(folder: Path, max_age_s: float = 3600) -> None:
    """Delete export files older than ``max_age_s`` (Gradio keeps its own copy of served files)."""
    cutoff = time.time() - max_age_s
    for file in folder.iterdir():
        if file.stat().st_mtime < cutoff:
            file.unlink(missing_ok=True)


def upload_path(upload) -> str | None:
    """The file path of a Gradio upload value (path string, file object or dict), or None."""
    if upload is None:
        return None
    return upload if isinstance(upload, str) else getattr(upload, "name", None) or upload.get("path")


def id_column_choice(choice: str | None) -> str | None:
    """The id column the user chose, or None for row numbers."""
    return None if choice in (None, "", NO_ID) else choice


RELEVANCE_CHOICES = [(label, level) for level, label in RELEVANT_FROM.items()]  # the metrics' relevant_from


def k_value(k) -> int:
    """The metrics' cut-off k as a whole number, or a message that says so."""
    try:
        return int(k)
    except (TypeError, ValueError):
        raise gr.Error(message(f"k must be a whole number of documents, got {k!r}."))


def model_settings(model: str, backend: str, max_length) -> ModelSettings:
    """The model widgets' values as settings, or a message that says what to fix."""
    model = (model or "").strip()
    if not model:
        raise gr.Error("Choose a model (0.6B, 4B, 8B) or type the path of a local model folder.")
    try:
        return ModelSettings(model, backend, int(max_length))
    except (TypeError, ValueError):
        raise gr.Error(message(f"Max length must be a whole number of tokens, got {max_length!r}."))


