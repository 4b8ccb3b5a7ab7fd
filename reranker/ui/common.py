"""What the page's tabs share: messages and errors for toasts, upload paths, the export folder's pruning, the
typed inputs handlers receive (documents, model settings, the table's view) and ``bind``, which hands a handler
those typed inputs while the event's API keeps one named parameter per component."""

from __future__ import annotations

import dataclasses
import functools
import html
import inspect
import logging
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from reranker.errors import InputError, RerankerError
from reranker.files import documents
from reranker.ranking import inspection
from reranker.serve.model_holder import ModelSettings
from reranker.scoring.prompt import INSTRUCTION_PRESETS
from reranker.serve.uploads import NOT_UPLOADED, uploaded
from reranker.ranking.disagreements import DEFAULT_THRESHOLD
from reranker.storage.labels import RELEVANT_FROM

log = logging.getLogger(__name__)
NO_ID = "(row number)"
DEFAULT_PRESET = next(iter(INSTRUCTION_PRESETS))


def message(text: str) -> str:
    """Text for a toast: Gradio renders toast messages as HTML, and ours can quote file names and columns."""
    return html.escape(text, quote=False)


def error(exc: RerankerError) -> gr.Error:
    """``exc`` as a toast titled by its kind (input or model problem). Input refused: one line in the log; a
    model problem: its traceback, for the operator."""
    if isinstance(exc, InputError):
        log.info("refused: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return gr.Error(message(str(exc)), title="Please check the input", print_exception=False)
    return gr.Error(message(str(exc)), title="Model problem")


def shows_errors(fn: Callable | None = None, *, title: str | None = None) -> Callable:
    """``fn`` (an event handler, or a helper of one) with the library's errors shown to the visitor: a
    ``RerankerError`` (``InputError`` and the rest) leaves it as ``error``'s toast, or one titled ``title``, never
    as a traceback. A generator stays a generator (Gradio streams it). Use as ``@shows_errors`` or
    ``@shows_errors(title=...)``."""
    if fn is None:
        return functools.partial(shows_errors, title=title)

    def shown(exc: RerankerError) -> gr.Error:
        return error(exc) if title is None else gr.Error(message(str(exc)), title=title, print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except RerankerError as exc:
                raise shown(exc) from exc
    else:
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except RerankerError as exc:
                raise shown(exc) from exc
    return call


def prune(folder: Path, max_age_s: float = 3600) -> None:
    """Delete export files older than ``max_age_s`` (Gradio keeps its own copy of served files)."""
    cutoff = time.time() - max_age_s
    for file in folder.iterdir():
        if file.stat().st_mtime < cutoff:
            file.unlink(missing_ok=True)


def upload_path(upload) -> str | None:
    """The file path of a Gradio upload value (path string, file object or dict), or None; an ``InputError`` when
    the path is not a file uploaded to this server (a client may name any path where an upload is expected)."""
    if upload is None:
        return None
    path = upload if isinstance(upload, str) else getattr(upload, "name", None) or upload.get("path")
    if not path:
        return None
    if not uploaded(path):
        raise InputError(NOT_UPLOADED)
    return path


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


# --- typed inputs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelInputs:
    """The model widgets' values: model, backend, max length."""

    model: str | None
    backend: str
    max_length: Any

    def settings(self) -> ModelSettings:
        """These values as settings, or a message that says what to fix."""
        model = (self.model or "").strip()
        if not model:
            raise gr.Error("Choose a model (0.6B, 4B, 8B) or type the path of a local model folder.")
        try:
            return ModelSettings(model, self.backend, int(self.max_length))
        except (TypeError, ValueError):
            raise gr.Error(message(f"Max length must be a whole number of tokens, got {self.max_length!r}."))


@dataclass(frozen=True)
class DocumentInputs:
    """The document widgets' values: pasted text, how it is split, an upload and its chosen columns."""

    pasted: str | None
    mode: str
    upload: Any
    text_column: str | None
    id_column: str | None

    def collect(self, max_documents: int, limit_reason: str = "") -> documents.Collection:
        """The documents these values name (raises ``InputError`` on a problem with them)."""
        return documents.collect(self.pasted, self.mode, upload_path(self.upload), self.text_column or None,
                                 id_column_choice(self.id_column), max_documents=max_documents,
                                 limit_reason=limit_reason)


@dataclass(frozen=True)
class ViewInputs:
    """How the ranked table is shown: order, minimums, top-k, the disagreement threshold and the switch that
    shows only disagreements."""

    sort: str
    min_score: Any
    min_confidence: Any
    top_k: Any
    threshold: Any = DEFAULT_THRESHOLD
    only: bool = False

    def rows(self, result: inspection.RunResult) -> list[inspection.RankedRow]:
        """The rows of ``result`` to show, or a message that says which filter to fix."""
        try:
            return inspection.view(result.rows, sort=self.sort, min_score=float(self.min_score or 0),
                                   min_confidence=float(self.min_confidence or 0),
                                   top_k=int(self.top_k) if self.top_k else None)
        except (RerankerError, ValueError) as exc:
            raise gr.Error(message(f"Check the filters: {exc}"))


@dataclass(eq=False)  # compared by identity: Gradio sees a new run as a changed state
class Ranking:
    """The last run of a session (its ``gr.State``): the result and the model settings that produced it."""

    result: inspection.RunResult
    settings: ModelSettings
    header: str = ""  # the run header shown with it (shown again when a later run is cancelled)


class Fields:
    """Components whose values reach a handler as one ``kind`` object (a dataclass with a field per component,
    given here by field name). ``suffix`` is added to the field names in the event's API (two sides of a
    comparison)."""

    def __init__(self, kind: type, /, suffix: str = "", **components):
        names = [f.name for f in dataclasses.fields(kind)]
        if sorted(components) != sorted(names):
            raise TypeError(f"{kind.__name__} takes the components {names}, got {list(components)}")
        self.kind = kind
        self.suffix = suffix
        self.components = [components[name] for name in names]  # in field order


def bind(fn: Callable, *inputs) -> Callable:
    """``fn`` as a Gradio event function over ``inputs``: each one a component (its value is passed as it is) or
    ``Fields`` (its components' values are passed as one typed object). Pass the result as the event's function
    and its ``.inputs`` as the event's inputs. The event's API keeps one named parameter per component (``fn``'s
    parameter name, or the field name and suffix), with the fields' defaults; ``fn``'s further parameters
    (``gr.Progress``, ``gr.EventData``) are filled in by Gradio as usual."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    if len(params) < len(inputs):
        raise TypeError(f"{fn.__name__} takes {len(params)} inputs, not {len(inputs)}")
    flat: list[inspect.Parameter] = []
    components: list = []
    for param, item in zip(params, inputs):
        if isinstance(item, Fields):
            components += item.components
            for field in dataclasses.fields(item.kind):
                default = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
                flat.append(inspect.Parameter(field.name + item.suffix, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                              default=default))
        else:
            flat.append(param.replace(annotation=inspect.Parameter.empty))
            components.append(item)
    special = params[len(inputs):]  # progress, event data: Gradio fills them in after the inputs
    names = [p.name for p in flat + special]
    if len(set(names)) != len(names):
        raise TypeError(f"{fn.__name__}: two inputs share a parameter name in {names}")
    # a default only where every later parameter has one too (a valid signature); Gradio passes every value
    required_after = any(p.default is inspect.Parameter.empty for p in special)
    for i in reversed(range(len(flat))):
        if required_after:
            flat[i] = flat[i].replace(default=inspect.Parameter.empty)
        required_after = required_after or flat[i].default is inspect.Parameter.empty

    def arguments(values) -> list:
        args, at = [], 0
        for item in inputs:
            if isinstance(item, Fields):
                n = len(item.components)
                args.append(item.kind(*values[at:at + n]))
                at += n
            else:
                args.append(values[at])
                at += 1
        return [*args, *values[at:]]

    if inspect.isgeneratorfunction(fn):  # Gradio streams a generator function's outputs: stay one
        @functools.wraps(fn)
        def call(*values):
            yield from fn(*arguments(values))
    else:
        @functools.wraps(fn)
        def call(*values):
            return fn(*arguments(values))

    hints = typing.get_type_hints(fn)
    call.__signature__ = signature.replace(parameters=[*flat, *special])
    call.__annotations__ = {p.name: hints[p.name] for p in special if p.name in hints}
    call.inputs = components
    return call


