"""Contenders from plain settings (a dict per variant), as the command line, a JSON file or the page give them.

A variant is ``{"kind": "qwen" | "cross-encoder" | "endpoint", ...}`` with

- ``qwen``: ``model`` (0.6B, 4B, 8B, a hub id or a folder), optional ``instruction``, ``max_length``, ``backend``
  (and any engine option the ``Reranker`` takes);
- ``cross-encoder``: ``model`` (hub id or folder), optional ``max_length``, ``revision``;
- ``endpoint``: ``url``, ``model``, optional ``key_env`` (the environment variable holding the key) or
  ``api_key``;

and, for every kind, optional ``name``, ``price_per_1k_pairs`` and ``price_per_hour``. Qwen models with the same
settings share one loaded ``Reranker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from reranker.bakeoff.contenders import Contender, QwenContender, open_cache
from reranker.errors import InputError
from reranker.scoring.engine import MODELS, Reranker

KINDS = ("qwen", "cross-encoder", "endpoint")
_COMMON = ("kind", "name", "price_per_1k_pairs", "price_per_hour")
_KEYS = {"qwen": {"model", "instruction", "max_length", "backend"},
         "cross-encoder": {"model", "max_length", "revision"},
         "endpoint": {"url", "model", "key_env", "api_key"}}


def _short(model: str) -> str:
    for size, hub_id in MODELS.items():
        if model in (size, hub_id):
            return f"Qwen3 {size}"
    return Path(model).name or model


def _price(spec: Mapping[str, Any], key: str) -> float | None:
    value = spec.get(key)
    if value is None or value == "":
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{key} must be a number, got {value!r}.") from None
    if price < 0:
        raise InputError(f"{key} cannot be negative, got {price}.")
    return price


def build_contenders(specs: Sequence[Mapping[str, Any]], *, cache: bool | str | Path = True,
                     engine_options: Mapping[str, Any] | None = None) -> list[Contender]:
    """One contender per spec, in order, named by the spec or after the model (numbered when names repeat)."""
    score_cache = open_cache(cache)
    rerankers: dict[tuple, Reranker] = {}
    contenders: list[Contender] = []
    used: dict[str, int] = {}
    for number, spec in enumerate(specs, start=1):
        kind = spec.get("kind")
        if kind not in KINDS:
            raise InputError(f"Variant {number}: kind must be one of {', '.join(KINDS)}, got {kind!r}.")
        unknown = set(spec) - set(_COMMON) - _KEYS[kind] - ({"engine_options"} if kind == "qwen" else set())
        if unknown:
            raise InputError(f"Variant {number} ({kind}): unknown setting(s) {', '.join(sorted(unknown))}; it takes "
                             f"{', '.join(sorted(_KEYS[kind] | set(_COMMON[1:])))}.")
        prices = dict(price_per_1k_pairs=_price(spec, "price_per_1k_pairs"),
                      price_per_hour=_price(spec, "price_per_hour"))
        model = spec.get("model")
        if not model:
            raise InputError(f"Variant {number} ({kind}) needs a model.")
        name = spec.get("name") or (_short(model) if kind != "endpoint" else f"{model} (endpoint)")
        if not spec.get("name"):
            used[name] = used.get(name, 0) + 1
            if used[name] > 1:
                name = f"{name} #{used[name]}"
        if kind == "qwen":
            options = {**(engine_options or {}), **spec.get("engine_options", {})}
            max_length = spec.get("max_length")
            key = (model, spec.get("backend", "auto"), tuple(sorted(options.items())))
            if key not in rerankers:
                rerankers[key] = Reranker(model, backend=spec.get("backend", "auto"), cache=cache, **options)
            reranker = rerankers[key]
            if max_length:
                reranker = reranker.at_max_length(int(max_length))
            contenders.append(QwenContender(name, reranker, spec.get("instruction") or None, **prices))
        elif kind == "cross-encoder":
            from reranker.bakeoff.cross_encoder import CrossEncoderContender

            contenders.append(CrossEncoderContender(name, model, revision=spec.get("revision"),
                                                    max_length=spec.get("max_length"), cache=score_cache, **prices))
        else:
            from reranker.bakeoff.rerank_endpoint import EndpointContender

            if not spec.get("url"):
                raise InputError(f"Variant {number} (endpoint) needs a url.")
            contenders.append(EndpointContender(name, spec["url"], model, api_key=spec.get("api_key"),
                                                key_env=spec.get("key_env"), cache=score_cache, **prices))
    return contenders
