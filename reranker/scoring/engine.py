"""``Reranker``: exact Qwen3-Reranker scores for (query, document) pairs, cached, from any backend."""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from reranker.scoring.backends import discard, load_backend, using
from reranker.scoring.backends.base import cuda_available
from reranker.scoring.backends.transformers_backend import cpu_computes_bf16
from reranker.scoring.canaries import CANARIES
from reranker.scoring.backends.zerogpu_backend import on_zerogpu
from reranker.storage.score_cache import CachedScore, ScoreCache, cache_key
from reranker.errors import Cancelled, InputError, ModelError
from reranker.scoring.inputs import check_documents, check_query, query_problem
from reranker.scoring.prompt import DEFAULT_INSTRUCTION, PromptBuilder
from reranker.storage.database import Database, default_data_dir

log = logging.getLogger(__name__)

MODELS = {
    "0.6B": "Qwen/Qwen3-Reranker-0.6B",
    "4B": "Qwen/Qwen3-Reranker-4B",
    "8B": "Qwen/Qwen3-Reranker-8B",
}
DEFAULT_MODEL = MODELS["0.6B"]
DEFAULT_MAX_LENGTH = 8192
# A CPU path in bfloat16 is kept when each canary log-odds is within this of float32's: bf16's own noise measured
# 0.03-0.04 at most on 400 pairs (docs/benchmarks.md), and grows with the log-odds' size on real weights.
BF16_TOLERANCE = 0.1
BF16_RELATIVE = 0.02
# A CPU path in float32 (OpenVINO) differs from transformers float32 only in the order of its sums: 1e-6 on the tiny
# test model, well under 1e-3 on the 0.6B shape (benchmarks/results/cpu_paths.md); a wrong conversion differs by
# whole units.
FLOAT32_TOLERANCE = 0.01
CPU_PATHS = ("transformers", "openvino")  # the backends whose precision ``auto`` chooses on a CPU
DTYPES = ("float32", "bfloat16", "float16")  # what ``dtype`` and RERANKER_DTYPE may name


@dataclass(frozen=True)
class Verdict:
    """The model's verdict on one (query, document) pair: the one scored-pair type every view builds on."""

    index: int  # position of the pair (or document) in the caller's input
    query: str
    document: str
    score: float  # p(yes) / (p(yes) + p(no))
    confidence: float  # |2 * score - 1|
    logodds: float  # logit(yes) - logit(no)
    truncated: bool  # the document was cut to fit max_length
    n_tokens: int  # the document's token count before any cut
    prompt_tokens: int  # tokens the model actually read
    cached: bool  # came from the score cache, not the model

    def as_dict(self) -> dict:
        return asdict(self)


Judgement = Verdict  # deprecated: the old name of Verdict ("judgement" now means a person's label only)


def rank_key(verdict: Verdict) -> tuple[float, int]:
    """The one ranking rule: higher log-odds first, ties in input order (``index``)."""
    return -verdict.logodds, verdict.index


def ranked(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Verdicts best first, by :func:`rank_key`."""
    return sorted(verdicts, key=rank_key)


@dataclass(frozen=True)
class PromptView:
    """The exact prompt the model reads for one pair, for inspection."""

    text: str
    token_ids: list[int]
    tokens: list[str]  # each token decoded on its own
    doc_start: int  # token index where the document begins
    doc_end: int  # token index just past the document's last kept token
    n_tokens: int  # the document's token count before any cut
    truncated: bool
    max_length: int
    before: str = ""  # the text of tokens [0, doc_start): template, instruction and query
    document: str = ""  # the text of the kept document tokens [doc_start, doc_end)
    after: str = ""  # the text of tokens [doc_end, end): the assistant lead

    @property
    def prompt_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class Stats:
    """Counters since this Reranker was created."""

    pairs: int = 0
    cache_hits: int = 0
    scored: int = 0  # pairs the backend computed
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, pairs: int, hits: int, scored: int) -> None:
        with self.lock:
            self.pairs += pairs
            self.cache_hits += hits
            self.scored += scored


def sigmoid(logodds: float) -> float:
    """p(yes) / (p(yes) + p(no)) from logit(yes) - logit(no), stable at both ends."""
    if logodds >= 0:
        return 1.0 / (1.0 + math.exp(-logodds))
    e = math.exp(logodds)
    return e / (1.0 + e)


class Reranker:
    """Scores (query, document) pairs with a Qwen3-Reranker.

    >>> reranker = Reranker("Qwen/Qwen3-Reranker-0.6B")
    >>> for r in reranker.rank("what is a panda?", ["The giant panda is a bear.", "Pandas is a library."]):
    ...     print(r.score, r.document)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        backend: str = "auto",
        revision: str | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        cache: bool | str | Path = True,
        dtype: str | None = None,
        **engine_options,
    ):
        """Load (or reuse) the model.

        ``model``: a hub id, one of ``MODELS``' keys ("0.6B", "4B", "8B"), or a local folder.
        ``backend``: "auto" (fast on an NVIDIA GPU; else vLLM, OpenVINO or transformers, :func:`auto_order`), "fast",
        "vllm", "transformers", "openvino" or "remote" (pass ``servers=[urls]``). ``cache``: True for the user cache
        folder, a folder path, or False. ``dtype``: the precision to compute in (default bfloat16 on an NVIDIA GPU or ZeroGPU, float32
        elsewhere, except bfloat16 where the transformers or openvino backend runs on a CPU with fast bf16 kernels and
        agrees with float32 on the canary pairs at load; the variable ``RERANKER_DTYPE`` sets it where ``dtype`` is not
        given, e.g. float32 for exact float32 scores everywhere); an OpenVINO engine is kept only where it agrees with
        transformers float32 on the canary pairs at load (:meth:`_keep_cpu_path_if_it_agrees`); scores are cached
        per precision. ``engine_options`` go to the backend
        (e.g. ``tensor_parallel_size``, ``memory_fraction``, ``max_num_batched_tokens``, ``servers``, the fast
        backend's ``kernels``, the transformers backend's ``share_heads``).
        """
        self.model = MODELS.get(model, model)
        self.revision = revision
        self.max_length = max_length
        # the lock goes with the tokenizer: every Reranker of the same files shares both (_shared_tokenizer)
        self.tokenizer, config, self._tokenizer_lock = _shared_tokenizer(self.model, revision)
        self.context = getattr(config, "max_position_embeddings", max_length)
        self._check_max_length(max_length)
        with self._tokenizer_lock:  # another Reranker of these files may be tokenizing right now
            self.builder = PromptBuilder(self.tokenizer, max_length)
        self.model_key = _model_key(self.model, revision, config)
        dtype = dtype or os.environ.get("RERANKER_DTYPE") or None
        if dtype is not None and dtype not in DTYPES:
            raise InputError(f"Unknown precision {dtype!r} (dtype or RERANKER_DTYPE): use {', '.join(DTYPES)}, or "
                             "leave it unset for the default.")
        if dtype is None:  # (on ZeroGPU CUDA is emulated outside @spaces.GPU, and may not be patched in yet)
            dtype = "bfloat16" if cuda_available() or on_zerogpu() else "float32"
            if dtype == "float32" and _first_choice(backend) in CPU_PATHS and cpu_computes_bf16():
                dtype = "bfloat16"  # kept only if it agrees with float32 (below)
        self._settings = dict(
            model=self.model,
            revision=revision,
            dtype=dtype,
            max_model_len=self._engine_length(max_length),
            yes_id=self.builder.yes_id,
            no_id=self.builder.no_id,
            **engine_options,
        )
        self.backend = self._engine = load_backend(backend, self._settings)  # _engine: the registry's
        # each CPU path checked against transformers float32 at load ("openvino float32", "transformers bfloat16"):
        # its largest canary log-odds difference
        self.checks: dict[str, float] = {}
        self._keep_cpu_path_if_it_agrees(backend)
        self.cache = _open_cache(cache)
        self.stats = Stats()

    def _keep_cpu_path_if_it_agrees(self, backend: str) -> None:
        """Check a CPU path other than transformers float32 (bfloat16, or OpenVINO) against transformers float32 on
        the canary pairs, and keep it only where every log-odds agrees (within ``BF16_TOLERANCE`` in bfloat16,
        ``FLOAT32_TOLERANCE`` in float32); else bfloat16 gives way to float32, and ``auto``'s OpenVINO to
        transformers. An OpenVINO engine asked for by name that disagrees is an error."""
        while self.backend.name in CPU_PATHS and (self.backend.name, self.backend.precision) != (
                "transformers", "float32"):
            engine, path = self.backend, f"{self.backend.name} {self.backend.precision}"
            if engine.float32_check is None:  # once per engine: later Rerankers on it reuse the result
                engine.float32_check = self._canary_logodds(engine)
            got, want = engine.float32_check
            difference = self.checks[path] = float(np.abs(got - want).max())
            if engine.precision == "bfloat16":
                tolerance = BF16_TOLERANCE + BF16_RELATIVE * np.abs(want)
            else:
                tolerance = FLOAT32_TOLERANCE
            if np.all(np.abs(got - want) <= tolerance):
                log.info("%s agrees with transformers float32 on the canary pairs (largest log-odds difference "
                         "%.4f): kept", path, difference)
                return
            if engine.precision == "bfloat16":
                log.warning("%s differs from float32 on the canary pairs by up to %.4f log-odds: scoring in "
                            "float32 instead", path, difference)
                discard(engine.name, self._settings)
                self._settings["dtype"] = "float32"
                self.backend = self._engine = load_backend(backend, self._settings)
            elif backend == "auto":
                log.warning("auto backend: %s differs from transformers float32 on the canary pairs by up to %.4f "
                            "log-odds: scoring with transformers float32 instead", path, difference)
                discard(engine.name, self._settings)
                self.backend = self._engine = load_backend("transformers", self._settings)
            else:
                raise ModelError(f"The {engine.name} backend's scores differ from transformers float32 by up to "
                                 f"{difference:.4f} log-odds on the canary pairs: its conversion of this model is "
                                 "not exact. Use backend='transformers'.")

    def _canary_logodds(self, engine) -> tuple[np.ndarray, np.ndarray]:
        """The canary pairs' log-odds on ``engine`` and on transformers float32 (a reference model loaded for this,
        then released)."""
        from reranker.scoring.backends.transformers_backend import TransformersBackend

        groups = [(query, [relevant, irrelevant]) for query, relevant, irrelevant in CANARIES]
        prompts = [p for group in self.builder.build_groups(DEFAULT_INSTRUCTION, groups) for p in group]
        ids = [p.token_ids for p in prompts]
        got = engine.score_logodds(ids)
        reference = TransformersBackend(self.model, revision=self.revision, dtype="float32",
                                        yes_id=self.builder.yes_id, no_id=self.builder.no_id)
        try:
            return got, reference.score_logodds(ids)
        finally:
            reference.close()

    def _check_max_length(self, max_length) -> None:
        if not isinstance(max_length, int) or max_length < 1:
            raise InputError(f"max_length must be a positive whole number of tokens, got {max_length!r}.")
        if max_length > self.context:
            raise InputError(f"max_length={max_length} exceeds the model's context of {self.context} tokens.")

    def _engine_length(self, max_length: int) -> int:
        """The context an engine is started with: the default, or longer when a caller asks for more."""
        return min(max(max_length, DEFAULT_MAX_LENGTH), self.context)

    def at_max_length(self, max_length: int) -> "Reranker":
        """This Reranker cutting prompts at ``max_length``: the same tokenizer, engine, cache and counters.

        Truncation is the prompt builder's, so no other engine is loaded unless a vLLM engine's context is
        shorter than ``max_length`` (it is then replaced by a longer one on the next call).
        """
        if max_length == self.max_length:
            return self
        self._check_max_length(max_length)
        view = copy.copy(self)
        view.max_length = max_length
        with self._tokenizer_lock:
            view.builder = PromptBuilder(self.tokenizer, max_length)
        view._settings = {**self._settings, "max_model_len": max(self._settings["max_model_len"],
                                                                 self._engine_length(max_length))}
        return view

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def device(self) -> str:
        return self.backend.device

    @property
    def precision(self) -> str:
        """The numbers the scores are computed in (float32, bfloat16, or "served" by remote servers)."""
        return self.backend.precision

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        instruction: str | None = None,
        top_k: int | None = None,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        partial: Callable[[list[Verdict]], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[Verdict]:
        """Documents ranked best first by :func:`rank_key` (ties keep input order); ``index`` is the input position.

        ``batch_size``, ``progress`` and ``cancelled`` are :meth:`score`'s; ``partial`` gets, after each batch, every
        verdict so far ranked best first (what a page shows while the run goes on).
        """
        if isinstance(documents, str) or not isinstance(documents, Sequence):
            raise InputError("documents must be a list of texts, one item per document.")
        check_documents(len(documents))
        check_query(query)
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a positive whole number, got {top_k!r}.")
        so_far: list[Verdict] = []

        def batch_done(batch: list[Verdict]) -> None:
            so_far.extend(batch)
            partial(ranked(so_far))

        verdicts = self.score([(query, d) for d in documents], instruction=instruction, batch_size=batch_size,
                              progress=progress, on_batch=batch_done if partial else None, cancelled=cancelled)
        best_first = ranked(verdicts)
        return best_first[:top_k] if top_k else best_first

    def score(self, pairs: Iterable[tuple[str, str]], *, instruction: str | None = None,
              batch_size: int | None = None, progress: Callable[[int, int], None] | None = None,
              on_batch: Callable[[list[Verdict]], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> list[Verdict]:
        """One Verdict per (query, document) pair, in input order.

        Pairs go to the cache and the engine ``batch_size`` at a time (default: all at once), and
        ``progress(done, total)`` is called after each batch, ``on_batch(verdicts)`` with that batch's verdicts.
        ``cancelled()`` is asked before each batch: when it says so, :class:`Cancelled` is raised (the batches
        already scored are in the cache). A pair seen earlier in the same call (a duplicate) is not computed
        again: duplicates always get identical scores, whatever the batch size.
        """
        instruction = resolve_instruction(instruction)
        pairs = validate_pairs(pairs)
        if batch_size is None:
            batch_size = len(pairs)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InputError(f"The batch size must be a positive whole number, got {batch_size!r}.")
        keys = self._cache_keys(instruction, pairs)
        known: dict[str, CachedScore] = {}  # every key of this call scored so far
        from_cache: set[str] = set()
        for start in range(0, len(pairs), batch_size):
            if cancelled is not None and cancelled():
                raise Cancelled(f"The run was stopped after {start:,} of {len(pairs):,} pairs.")
            batch_keys = keys[start:start + batch_size]
            new = {k: pair for k, pair in zip(batch_keys, pairs[start:start + batch_size]) if k not in known}
            hits = self.cache.get_many(list(new), self.precision) if self.cache and new else {}
            missing = {k: pair for k, pair in new.items() if k not in hits}
            fresh = self._compute(instruction, missing)
            if self.cache:
                self.cache.put_many(self.model_key, self.precision, fresh.items())
            known.update(hits)
            known.update(fresh)
            from_cache.update(hits)
            self.stats.add(len(batch_keys), sum(k in from_cache for k in batch_keys), len(fresh))
            if on_batch:
                on_batch([self._verdict(index, *pairs[index], known[keys[index]], cached=keys[index] in from_cache)
                          for index in range(start, start + len(batch_keys))])
            if progress:
                progress(start + len(batch_keys), len(pairs))
        return [self._verdict(index, query, document, known[key], cached=key in from_cache)
                for index, ((query, document), key) in enumerate(zip(pairs, keys))]

    @staticmethod
    def _verdict(index: int, query: str, document: str, entry: CachedScore, *, cached: bool) -> Verdict:
        score = sigmoid(entry.logodds)
        return Verdict(index=index, query=query, document=document, score=score, confidence=abs(2 * score - 1),
                       logodds=entry.logodds, truncated=entry.doc_tokens_kept < entry.doc_tokens,
                       n_tokens=entry.doc_tokens, prompt_tokens=entry.prompt_tokens, cached=cached)

    def _compute(self, instruction: str, pairs_by_key: dict[str, tuple[str, str]]) -> dict[str, CachedScore]:
        """Score pairs on the backend, grouped by query so the engine's prefix cache reuses each head."""
        by_query: dict[str, list[tuple[str, str]]] = {}
        for key, (query, document) in pairs_by_key.items():
            by_query.setdefault(query, []).append((key, document))
        groups = [(query, [d for _, d in items]) for query, items in by_query.items()]
        keys = [k for items in by_query.values() for k, _ in items]
        with using(self._engine.name, self._settings) as engine:  # loaded again if it was released meanwhile
            if self.backend is self._engine:  # (a caller may have put a wrapper around it: kept as it is)
                self.backend = engine
            self._engine = engine
            # A backend that queues device work (fast) scores one chunk while the next is tokenized; the others
            # get the whole call at once (vLLM schedules its own batches).
            prompts, pending = [], []
            for chunk in _chunks(groups, self.backend.pipeline_pairs or len(keys)):
                with self._tokenizer_lock:
                    built = [p for group in self.builder.build_groups(instruction, chunk) for p in group]
                prompts.extend(built)
                pending.append(self.backend.submit([p.token_ids for p in built]))
            logodds = np.concatenate([wait() for wait in pending]) if pending else np.zeros(0)
        if not np.all(np.isfinite(logodds)):
            raise ModelError("The model returned a non-finite score (NaN or infinity): the weights are broken.")
        return {
            key: CachedScore(float(value), p.doc_tokens, p.doc_tokens_kept, len(p.token_ids))
            for key, p, value in zip(keys, prompts, logodds)
        }

    def prompt(self, query: str, document: str, *, instruction: str | None = None) -> PromptView:
        """The exact prompt (text and tokens) the model reads for this pair, after truncation."""
        instruction = resolve_instruction(instruction)
        ((query, document),) = validate_pairs([(query, document)])
        with self._tokenizer_lock:
            (built,) = self.builder.build(instruction, query, [document])
            text = self.builder.render(built)
            ids = built.token_ids
            doc_end = built.doc_start + built.doc_tokens_kept
            tokens = self.tokenizer.batch_decode([[t] for t in ids], skip_special_tokens=False)
            before, document, after = self.tokenizer.batch_decode(
                [ids[:built.doc_start], ids[built.doc_start:doc_end], ids[doc_end:]], skip_special_tokens=False)
        return PromptView(
            text=text,
            token_ids=built.token_ids,
            tokens=tokens,
            doc_start=built.doc_start,
            doc_end=doc_end,
            n_tokens=built.doc_tokens,
            truncated=built.truncated,
            max_length=self.max_length,
            before=before,
            document=document,
            after=after,
        )

    def truncate_documents(self, documents: Sequence[str], max_tokens: int) -> tuple[list[str], int]:
        """Each document cut after its first ``max_tokens`` tokens (as the prompt tokenizes it), and how many were
        cut: the REST API's ``max_tokens_per_doc``. Uses the tokenizer under the engine's lock."""
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise InputError(f"max_tokens must be a positive whole number, got {max_tokens!r}.")
        with self._tokenizer_lock:
            return self.builder.first_tokens(documents, max_tokens)

    def _cache_keys(self, instruction: str, pairs: Sequence[tuple[str, str]]) -> list[str]:
        template = self.builder.fingerprint
        return [cache_key(self.model_key, template, instruction, q, d, self.max_length) for q, d in pairs]

    def count_cached(self, pairs: Iterable[tuple[str, str]], *, instruction: str | None = None) -> int:
        """How many of the distinct ``pairs`` the score cache already holds (0 without a cache)."""
        if not self.cache:
            return 0
        keys = self._cache_keys(resolve_instruction(instruction), validate_pairs(pairs))
        return len(self.cache.get_many(list(dict.fromkeys(keys)), self.precision))

    def read_parts(self, documents: Sequence[str], max_tokens: int) -> list[tuple[str, int]]:
        """Each document's part within its first ``max_tokens`` tokens and its length in tokens (what an
        explanation covers). Uses the tokenizer under the engine's lock."""
        with self._tokenizer_lock:
            return self.builder.read_parts(documents, max_tokens)

    def info(self) -> dict:
        """What is loaded and where, for status displays and /health."""
        return {
            "model": self.model,
            "model_key": self.model_key,
            "backend": self.backend.name,
            "device": self.backend.device,
            "precision": self.backend.precision,
            "kernels": self.backend.kernels(),
            "max_length": self.max_length,
            "cache": str(self.cache.db.path) if self.cache else None,
            "pairs": self.stats.pairs,
            "cache_hits": self.stats.cache_hits,
            "scored": self.stats.scored,
        }


def _first_choice(backend: str) -> str:
    """The backend ``backend`` scores with if it loads: itself, or the one ``auto`` tries first."""
    from reranker.scoring.backends import auto_order

    return auto_order()[0] if backend == "auto" else backend


def _chunks(groups: list[tuple[str, list[str]]], pairs: int) -> Iterable[list[tuple[str, list[str]]]]:
    """Whole query groups, in order, gathered into chunks of at least ``pairs`` pairs (the last may be smaller)."""
    chunk, size = [], 0
    for group in groups:
        chunk.append(group)
        size += len(group[1])
        if size >= pairs:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def resolve_instruction(instruction: str | None) -> str:
    """The instruction to use: the caller's, or the default when none (or only spaces) is given."""
    if instruction is None:
        return DEFAULT_INSTRUCTION
    if not isinstance(instruction, str):
        raise InputError(f"The instruction must be text, got {type(instruction).__name__}.")
    return instruction if instruction.strip() else DEFAULT_INSTRUCTION


def validate_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Check every pair once, and say which ones are wrong and why."""
    if isinstance(pairs, (str, bytes)):
        raise InputError("pairs must be a list of (query, document) tuples, not a single text.")
    checked, problems = [], []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            problems.append(f"item {i} is not a (query, document) pair")
            continue
        query, document = pair
        problem = query_problem(query)
        if problem:
            problems.append(f"{problem} (item {i})" if i else problem)
        if not isinstance(document, str):
            problems.append(f"document {i} is {type(document).__name__}, not text")
        elif not document.strip():
            problems.append(f"document {i} is empty")
        checked.append((query, document))
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError("Cannot score: " + "; ".join(problems[:5]) + more + ".")
    if not checked:
        raise InputError("There is nothing to score: give at least one (query, document) pair.")
    return checked


TOKENIZERS_KEPT = 4  # a Qwen3 tokenizer holds ~30 MB; loading one takes ~1.7 s (2-core EPYC), the weights of the
# tiny test model 0.03 s: switching between a few models should not read their tokenizers again
_tokenizers: OrderedDict[str, tuple] = OrderedDict()
_tokenizers_lock = threading.Lock()


def _shared_tokenizer(model: str, revision: str | None) -> tuple:
    """(tokenizer, config, lock) of ``model``: loaded once and shared by every Reranker of the same files, the
    ``TOKENIZERS_KEPT`` models used last kept. Its calls take the lock (a call may set the tokenizer's options)."""
    key = _files_key(model, revision)
    with _tokenizers_lock:
        if key in _tokenizers:
            _tokenizers.move_to_end(key)
            return _tokenizers[key]
    loaded = (*_load_tokenizer_and_config(model, revision), threading.Lock())
    with _tokenizers_lock:
        kept = _tokenizers.setdefault(key, loaded)  # another thread's, where it loaded the same files first
        _tokenizers.move_to_end(key)
        while len(_tokenizers) > TOKENIZERS_KEPT:
            _tokenizers.popitem(last=False)
    return kept


def _load_tokenizer_and_config(model: str, revision: str | None):
    try:
        from transformers import AutoConfig, AutoTokenizer
    except ImportError as exc:
        raise ModelError("transformers is not installed: `pip install -r requirements.txt`.") from exc
    try:
        config = AutoConfig.from_pretrained(model, revision=revision)
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    except (OSError, ValueError) as exc:
        if model.startswith((".", "/", "~")) or Path(model).exists():
            raise ModelError(f"Cannot load model {model!r}: there is no model folder at that path.") from exc
        raise ModelError(
            f"Cannot load model {model!r}: it is not a local folder and could not be loaded from the "
            f"Hugging Face hub ({str(exc).splitlines()[0]})."
        ) from exc
    if getattr(config, "model_type", None) != "qwen3":
        raise ModelError(
            f"{model!r} is a {getattr(config, 'model_type', 'unknown')!r} model, not a Qwen3 reranker "
            "(expected model_type 'qwen3')."
        )
    return tokenizer, config


def _model_key(model: str, revision: str | None, config) -> str:
    """What identifies the weights: hub id + resolved commit, or a local folder + its files' fingerprint."""
    if Path(model).is_dir():
        return _files_key(model, revision)
    commit = getattr(config, "_commit_hash", None) or revision or "main"
    return f"{model}@{commit}"


def _files_key(model: str, revision: str | None) -> str:
    """A local folder + its files' names, sizes and times; a hub id + the revision asked for."""
    path = Path(model)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(path.iterdir()):
            if file.is_file():
                stat = file.stat()
                digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return f"{path.resolve()}@{digest.hexdigest()[:16]}"
    return f"{model}@{revision or 'main'}"


def _open_cache(cache: bool | str | Path) -> ScoreCache | None:
    if cache is False or cache is None:
        return None
    folder = default_data_dir() if cache is True else Path(cache).expanduser()
    return ScoreCache(Database(folder / "reranker.sqlite3"))
