"""IR metrics of rankings against graded judgements, computed with ranx.

Labels are graded 0 (not relevant), 1 (partly relevant), 2 (relevant). The conventions are trec_eval's:

- **nDCG@k** uses the labels as gains (0, 1, 2) with a log2 discount; the ideal ranking is the judged
  documents of the set sorted by label.
- **MRR, MAP and P@k** are binary: a document is relevant when its label is at least ``relevant_from``
  (default 1, so "partly relevant" counts; 2 counts only "relevant").
- Unjudged documents count as **not relevant**.
- Only the documents being ranked are evaluated: judgements of documents outside the ranked set are ignored
  (and counted in ``Evaluation.ignored``), since a reranker cannot place what it was not given.
- P@k divides by k, also when fewer than k documents are ranked.
- A document ranked twice (the same text) earns credit once, at its best rank; the copy keeps its place.
- A metric is undefined, not 0, when nothing it needs is judged: without any judgement of the ranked
  documents the result says "no judgements yet"; without a relevant one, the binary metrics are undefined.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from reranker.storage.labels import DEFAULT_RELEVANT_FROM, LABELS, check_relevant_from, scale
from reranker.errors import InputError

DEFAULT_K = 10
NO_JUDGEMENTS = "no judgements yet"
NO_RELEVANT = "no ranked document is judged relevant yet"


def metric_names(k: int = DEFAULT_K) -> list[str]:
    """Column names of the metrics, in display order: nDCG@k, MRR, MAP, P@k."""
    return [f"nDCG@{k}", "MRR", "MAP", f"P@{k}"]


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one ranking, or the reason some are undefined."""

    values: dict[str, float] = field(default_factory=dict)  # metric name -> value; undefined metrics are absent
    judged: int = 0  # distinct ranked documents with a judgement
    relevant: int = 0  # distinct ranked documents with label >= relevant_from
    unjudged: int = 0  # distinct ranked documents without a judgement (counted as not relevant)
    ignored: int = 0  # judgements of documents that are not in the ranking
    note: str | None = None  # why metrics are missing: NO_JUDGEMENTS or NO_RELEVANT

    def value(self, name: str) -> float | None:
        return self.values.get(name)


def _check(k: int, relevant_from: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k (the cut-off of nDCG@k and P@k) must be a positive whole number, got {k!r}.")
    check_relevant_from(relevant_from)


def _check_labels(query_id: str, labels: Mapping[str, int]) -> None:
    bad = [(doc, label) for doc, label in labels.items() if label not in LABELS or isinstance(label, bool)]
    if bad:
        doc, label = bad[0]
        raise InputError(f"Query {query_id!r}: label {label!r} of document {doc!r} is not on the scale "
                         f"({scale()})"
                         + (f" ({len(bad)} labels are off the scale)." if len(bad) > 1 else "."))


def evaluate_many(rankings: Mapping[str, Sequence[str]], labels: Mapping[str, Mapping[str, int]], *,
                  k: int = DEFAULT_K, relevant_from: int = DEFAULT_RELEVANT_FROM) -> dict[str, Evaluation]:
    """Metrics for each query's ranking (document keys, best first) against its labels (document key -> 0/1/2).

    Returns one ``Evaluation`` per query of ``rankings``; queries without labels get ``note=NO_JUDGEMENTS``.
    """
    _check(k, relevant_from)
    graded, binary, counts = {}, {}, {}
    runs: dict[str, dict[str, float]] = {}
    for query_id, ranking in rankings.items():
        query_labels = labels.get(query_id) or {}
        _check_labels(query_id, query_labels)
        distinct = dict.fromkeys(ranking)
        kept = {doc: int(label) for doc, label in query_labels.items() if doc in distinct}
        counts[query_id] = dict(
            judged=len(kept),
            relevant=sum(label >= relevant_from for label in kept.values()),
            unjudged=len(distinct) - len(kept),
            ignored=len(query_labels) - len(kept),
        )
        if any(label >= 1 for label in kept.values()):
            graded[query_id] = kept
            runs[query_id] = _run_scores(ranking)
        if any(label >= relevant_from for label in kept.values()):
            binary[query_id] = kept
    names = metric_names(k)
    in_ranx = ranx_names(k, relevant_from)
    computed = ranx_values(graded, runs, list(in_ranx.values()))
    values: dict[str, dict[str, float]] = {q: {} for q in rankings}
    for query_id, scores in computed.items():
        shown = names if query_id in binary else names[:1]  # binary metrics need a relevant document
        values[query_id] = {name: scores[in_ranx[name]] for name in shown}
    results = {}
    for query_id in rankings:
        count = counts[query_id]
        note = None
        if not count["judged"]:
            note = NO_JUDGEMENTS
        elif query_id not in binary:
            note = NO_RELEVANT
        results[query_id] = Evaluation(values=values[query_id], note=note, **count)
    return results


def evaluate(ranking: Sequence[str], labels: Mapping[str, int], *, k: int = DEFAULT_K,
             relevant_from: int = DEFAULT_RELEVANT_FROM) -> Evaluation:
    """Metrics of one ranking (document keys, best first) against labels (document key -> 0/1/2)."""
    return evaluate_many({"q": ranking}, {"q": labels}, k=k, relevant_from=relevant_from)["q"]


def mean_values(evaluations: Sequence[Evaluation], k: int = DEFAULT_K) -> tuple[dict[str, float], dict[str, int]]:
    """Each metric's mean over the queries where it is defined, and how many queries that mean covers."""
    means, covered = {}, {}
    for name in metric_names(k):
        found = [e.values[name] for e in evaluations if name in e.values]
        covered[name] = len(found)
        if found:
            means[name] = sum(found) / len(found)
    return means, covered


def trec_eval_order(scores: Mapping[str, float]) -> list[str]:
    """Document ids of a scored run best first, as trec_eval orders them: score descending, ties by document id
    descending (``strcmp`` order, which is code-point order for UTF-8)."""
    by_id = sorted(scores, reverse=True)
    return sorted(by_id, key=lambda doc: -scores[doc])  # stable: tied scores keep the descending ids


def _run_scores(ranking: Sequence[str]) -> dict[str, float]:
    """Strictly decreasing scores that make ranx see exactly this order (no tie-breaking by id).

    A repeated key keeps its first (best) place; later copies get keys no judgement names.
    """
    scores: dict[str, float] = {}
    for position, doc in enumerate(ranking):
        key = doc if doc not in scores else f"{doc}\u0001copy{position}"
        scores[key] = float(len(ranking) - position)
    return scores


def ranx_names(k: int, relevant_from: int) -> dict[str, str]:
    """Our metric name → ranx's name for it, at cut-off ``k`` with relevance from grade ``relevant_from``."""
    suffix = "" if relevant_from == 1 else f"-l{relevant_from}"
    return dict(zip(metric_names(k), (f"ndcg@{k}", f"mrr{suffix}", f"map{suffix}", f"precision@{k}{suffix}")))


RANX_KEY_WIDTH = 9  # characters of every document key ranx sees (_ranx_keys)
_RANX_LOCK = threading.Lock()  # ranx_values: one thread at a time


def _ranx_keys(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
               ) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """``qrels`` and ``run`` with each query's document ids replaced by keys of one fixed width, the same key for
    the same id in both (the metrics do not depend on ids).

    ranx hands document ids to numba as fixed-width strings, and the width is part of the compiled type: every new
    longest id would compile ranx's kernels again (1–2 s on a 2-core CPU, on a visitor's first comparison). With one
    width they are compiled once, by the start-up warm-up (``reranker.ui.warmup``)."""
    codes: dict[str, dict[str, str]] = {}

    def key(query_id: str, doc: str) -> str:
        table = codes.setdefault(query_id, {})
        return table.setdefault(doc, f"{len(table):0{RANX_KEY_WIDTH}d}")

    recoded_qrels = {q: {key(q, doc): label for doc, label in labels.items()} for q, labels in qrels.items()}
    recoded_run = {q: {key(q, doc): score for doc, score in scores.items()} for q, scores in run.items()}
    return recoded_qrels, recoded_run


def ranx_values(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
                metrics: list[str]) -> dict[str, dict[str, float]]:
    """Per-query values of ranx ``metrics`` (ranx names): query id → metric → value, for the queries of ``qrels``
    (``run`` names each of them). One thread at a time: numba's default threading layer aborts the whole process
    when two threads run ranx's parallel kernels at once (a request beside the start-up warm-up, two visitors)."""
    if not qrels:
        return {}
    from numba.core.errors import NumbaTypeSafetyWarning
    from ranx import Qrels, Run, evaluate as ranx_evaluate

    qrels, run = _ranx_keys(qrels, run)
    with _RANX_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)  # ranx casts hashed ids; harmless
        ranx_run = Run.from_dict(run)
        scores = ranx_evaluate(Qrels.from_dict(qrels), ranx_run, metrics, return_mean=False,
                               save_results_in_run=False)
    query_ids = list(ranx_run.get_query_ids())
    return {q: {m: float(scores[m][i]) for m in metrics} for i, q in enumerate(query_ids)}
