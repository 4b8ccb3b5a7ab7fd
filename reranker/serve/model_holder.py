"""The models one server process holds: loaded once, shared by every user, loaded in the background at start.

One Reranker per (model, backend) serves every max length (:meth:`Reranker.at_max_length`); only models on the
operator's allow-list load, and at most ``max_models`` stay held, the least recently used dropped first (the
backend registry releases their engines by the same rule, see ``set_max_engines``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Iterable

from reranker.scoring.check import CheckReport, run_check
from reranker.scoring.engine import MODELS, Reranker
from reranker.errors import InputError, RerankerError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSettings:
    """What selects a Reranker: model (a ``MODELS`` key, hub id or local folder), backend and max length."""

    model: str
    backend: str = "auto"
    max_length: int = 8192

    @property
    def model_id(self) -> str:
        return MODELS.get(self.model, self.model)

    @property
    def loaded_as(self) -> tuple[str, str]:
        """What one loaded Reranker is shared by: the model and the backend (every max length)."""
        return _normal(self.model_id), self.backend


def display_name(model: str) -> str:
    """``model`` named without a server path: an alias or hub id as it is, a local folder by its folder name."""
    path = Path(model).expanduser()
    local = path.is_absolute() or model.startswith((".", "~")) or path.exists()
    return path.name if local else model


def _normal(model_id: str) -> str:
    return model_id.strip().rstrip("/")


class ModelHolder:
    """Rerankers by (model, backend); each is loaded once (in a background thread) and then shared.

    ``get`` waits for a load in progress; a failed load is reported to every caller and retried on the
    next ``get``. ``models``: the models callers may ask for (aliases, hub ids, folders; default: only the
    served one); ``backends``: the backends they may ask for (default: any); ``max_length_limit``: the
    longest max length they may ask for (default: the model's context); ``max_models``: how many Rerankers
    stay held (default: no bound); ``check_at_load``: run the canary check on each freshly loaded model;
    ``limit_reason``: why the server holds runs to its limits, told to whoever asks for more.
    """

    def __init__(self, default: ModelSettings, *, cache: bool | str = True, engine_options: dict | None = None,
                 models: Iterable[str] | None = None, backends: Iterable[str] | None = None,
                 max_length_limit: int | None = None, max_models: int | None = None, check_at_load: bool = True,
                 limit_reason: str = ""):
        self.default = default
        self.cache = cache
        self.engine_options = engine_options or {}
        self.models = list(dict.fromkeys([default.model, *(models or [])]))
        self._allowed = {_normal(MODELS.get(m, m)) for m in self.models}
        self.backends = list(backends) if backends is not None else None
        self.max_length_limit = max_length_limit
        self.max_models = max_models
        self.check_at_load = check_at_load
        self.limit_reason = limit_reason
        self._loads: OrderedDict[tuple[str, str], Future] = OrderedDict()  # least recently used first
        self._checks: dict[tuple[str, str], CheckReport | str] = {}
        self._after_check: dict[tuple[str, str], tuple[int, int]] = {}  # (pairs, cache hits) the check used
        self._lock = threading.Lock()

    def allow(self, settings: ModelSettings) -> None:
        """Refuse, with a message that says what is offered, settings outside the operator's lists."""
        if settings.loaded_as[0] not in self._allowed:
            offered = ", ".join(f"{m} ({MODELS[m]})" if m in MODELS else m for m in self.models)
            raise InputError(f"The model {settings.model!r} is not offered on this server. Choose one of: {offered}. "
                             "(The server's operator chooses the models with --models.)")
        if self.backends is not None and settings.backend not in self.backends:
            raise InputError(f"The backend {settings.backend!r} is not offered on this server; it runs "
                             f"{' or '.join(self.backends)}.")
        if self.max_length_limit is not None and settings.max_length > self.max_length_limit:
            raise InputError(f"Max length {settings.max_length:,} is above this server's limit of "
                             f"{self.max_length_limit:,} tokens" + (f" ({self.limit_reason})" if self.limit_reason
                                                                    else "") + ": choose a smaller one.")

    def start(self, settings: ModelSettings | None = None, *, in_this_thread: bool = False) -> Future:
        """Begin loading ``settings`` (default: the server's model) unless it is loaded or loading; in a background
        thread, or with ``in_this_thread`` in the caller's (returning once loaded: on ZeroGPU, whose emulated CUDA
        exists only in the thread that imported ``spaces``, models must load on the main thread)."""
        settings = settings or self.default
        self.allow(settings)
        key = settings.loaded_as
        with self._lock:
            future = self._loads.get(key)
            if future is not None and not (future.done() and future.exception() is not None):
                self._loads.move_to_end(key)
                return future
            future = self._loads[key] = Future()
            self._loads.move_to_end(key)
            while self.max_models is not None and len(self._loads) > self.max_models:
                dropped, _ = self._loads.popitem(last=False)  # its engine is released by the backend registry
                self._checks.pop(dropped, None)
                self._after_check.pop(dropped, None)
        if in_this_thread:
            self._load(settings, future)
        else:
            threading.Thread(target=self._load, args=(settings, future), name=f"load {settings.model}",
                             daemon=True).start()
        return future

    def _load(self, settings: ModelSettings, future: Future) -> None:
        log.info("loading %s", settings)
        try:
            reranker = Reranker(settings.model_id, backend=settings.backend, max_length=settings.max_length,
                                cache=self.cache, **self.engine_options)
        except BaseException as exc:  # handed to every waiting caller, which turns it into a message
            log.warning("loading %s failed: %s", settings, exc)
            future.set_exception(exc)
            return
        if self.check_at_load:
            self._checks[settings.loaded_as] = self._canary(settings, reranker)
        self._after_check[settings.loaded_as] = (reranker.stats.pairs, reranker.stats.cache_hits)
        future.set_result(reranker)

    @staticmethod
    def _canary(settings: ModelSettings, reranker: Reranker) -> CheckReport | str:
        """Run the known-answer check once on a freshly loaded model and log its verdict."""
        try:
            report = run_check(reranker)
        except Exception as exc:  # the model loaded but cannot score; it stays loaded and requests will say why
            log.warning("canary check of %s could not run: %s", settings.model_id, exc)
            return str(exc) if isinstance(exc, RerankerError) else f"{type(exc).__name__}: {exc}"
        (log.info if report.passed else log.warning)("canary check of %s: %s", settings.model_id, report.summary())
        return report

    def check(self, settings: ModelSettings | None = None) -> CheckReport | str | None:
        """The start-up canary check of a loaded model (its report, or why it could not run); None before."""
        return self._checks.get((settings or self.default).loaded_as)

    def usage(self, settings: ModelSettings, reranker: Reranker) -> tuple[int, int]:
        """Pairs ``reranker`` scored for its users and how many came from the cache, not counting the self-check's
        canary pairs."""
        pairs, hits = self._after_check.get(settings.loaded_as, (0, 0))
        return reranker.stats.pairs - pairs, reranker.stats.cache_hits - hits

    def get(self, settings: ModelSettings | None = None) -> Reranker:
        """The Reranker for ``settings``, loading it first if needed (blocks until it is ready)."""
        settings = settings or self.default
        return self.start(settings).result().at_max_length(settings.max_length)

    def state(self, settings: ModelSettings | None = None) -> tuple[str, Reranker | None, str | None]:
        """("not loaded" | "loading" | "ready" | "failed", the Reranker when ready, the error text when failed)."""
        settings = settings or self.default
        try:
            self.allow(settings)
        except InputError as refused:
            return "failed", None, str(refused)
        with self._lock:
            future = self._loads.get(settings.loaded_as)
        if future is None:
            return "not loaded", None, None
        if not future.done():
            return "loading", None, None
        exc = future.exception()
        if exc is None:
            try:
                return "ready", future.result().at_max_length(settings.max_length), None
            except RerankerError as problem:
                exc = problem
        return "failed", None, str(exc) if isinstance(exc, RerankerError) else f"{type(exc).__name__}: {exc}"
