"""The models one server process holds: loaded once, shared by every user, loaded in the background at start."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from reranker.scoring.check import CheckReport, run_check
from reranker.scoring.engine import MODELS, Reranker
from reranker.errors import RerankerError

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


class ModelHolder:
    """Rerankers by settings; each is loaded once (in a background thread) and then shared.

    ``get`` waits for a load in progress; a failed load is reported to every caller and retried on the
    next ``get``. Engines themselves are shared further by the backend registry.
    """

    def __init__(self, default: ModelSettings, *, cache: bool | str = True, engine_options: dict | None = None):
        self.default = default
        self.cache = cache
        self.engine_options = engine_options or {}
        self._loads: dict[ModelSettings, Future] = {}
        self._checks: dict[ModelSettings, CheckReport | str] = {}
        self._lock = threading.Lock()

    def start(self, settings: ModelSettings | None = None) -> Future:
        """Begin loading ``settings`` (default: the server's model) unless it is loaded or loading."""
        settings = settings or self.default
        with self._lock:
            future = self._loads.get(settings)
            if future is not None and not (future.done() and future.exception() is not None):
                return future
            future = Future()
            self._loads[settings] = future
        threading.Thread(target=self._load, args=(settings, future), name=f"load {settings.model}", daemon=True).start()
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
        self._checks[settings] = self._canary(settings, reranker)
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
        return self._checks.get(settings or self.default)

    def get(self, settings: ModelSettings | None = None) -> Reranker:
        """The Reranker for ``settings``, loading it first if needed (blocks until it is ready)."""
        return self.start(settings).result()

    def state(self, settings: ModelSettings | None = None) -> tuple[str, Reranker | None, str | None]:
        """("not loaded" | "loading" | "ready" | "failed", the Reranker when ready, the error text when failed)."""
        with self._lock:
            future = self._loads.get(settings or self.default)
        if future is None:
            return "not loaded", None, None
        if not future.done():
            return "loading", None, None
        exc = future.exception()
        if exc is not None:
            return "failed", None, str(exc) if isinstance(exc, RerankerError) else f"{type(exc).__name__}: {exc}"
        return "ready", future.result(), None
