"""IR metrics: hand-computed examples, the edge cases, and agreement with trec_eval (through ir-measures)."""

import math
import random

import ir_measures
import pytest
from ir_measures import AP, RR, P, nDCG

from reranker.errors import InputError
from reranker.ranking.metrics import NO_JUDGEMENTS, NO_RELEVANT, evaluate, evaluate_many, mean_values, metric_names

RANKING = ["b", "c", "a", "d"]  # best first
LABELS = {"a": 2, "b": 0, "c": 1}  # d is unjudged


def test_hand_computed_graded_and_binary_values():
    result = evaluate(RANKING, LABELS, k=3)
    # DCG@3 = 0/log2(2) + 1/log2(3) + 2/log2(4); ideal order a, c, b: 2/log2(2) + 1/log2(3) + 0
    assert result.values["nDCG@3"] == pytest.approx((1 / math.log2(3) + 1) / (2 + 1 / math.log2(3)))
    assert result.values["MRR"] == pytest.approx(1 / 2)  # c (partly relevant) is first relevant, at rank 2
    assert result.values["MAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # relevant at ranks 2 and 3
    assert result.values["P@3"] == pytest.approx(2 / 3)
    assert (result.judged, result.relevant, result.unjudged, result.ignored, result.note) == (3, 2, 1, 0, None)


def test_only_relevant_counts_when_relevant_from_is_2():
    result = evaluate(RANKING, LABELS, k=3, relevant_from=2)
    assert result.values["MRR"] == pytest.approx(1 / 3)
    assert result.values["MAP"] == pytest.approx(1 / 3)
    assert result.values["P@3"] == pytest.approx(1 / 3)
    assert result.values["nDCG@3"] == pytest.approx(evaluate(RANKING, LABELS, k=3).values["nDCG@3"])  # always graded


def test_unjudged_documents_count_as_not_relevant():
    result = evaluate(["x", "a"], {"a": 2})
    assert result.values["MRR"] == pytest.approx(1 / 2)
    assert result.values["nDCG@10"] == pytest.approx((2 / math.log2(3)) / 2)
    assert result.unjudged == 1


def test_no_judgements_is_not_a_zero():
    result = evaluate(["x", "y"], {})
    assert result.values == {} and result.note == NO_JUDGEMENTS
    assert evaluate(["x"], {"elsewhere": 2}).note == NO_JUDGEMENTS  # judged, but not among these documents


def test_nothing_relevant_leaves_metrics_undefined():
    result = evaluate(["x", "y"], {"x": 0, "y": 0})
    assert result.values == {} and result.note == NO_RELEVANT and result.judged == 2
    partly = evaluate(["x", "y"], {"y": 1}, relevant_from=2)  # graded gain exists, binary relevance does not
    assert set(partly.values) == {"nDCG@10"} and partly.note == NO_RELEVANT


def test_judgements_outside_the_ranking_are_ignored():
    result = evaluate(["a", "b"], {"a": 2, "gone": 2})
    assert result.values["nDCG@10"] == pytest.approx(1.0) and result.values["MAP"] == pytest.approx(1.0)
    assert result.ignored == 1


def test_precision_divides_by_k_and_duplicates_earn_credit_once():
    assert evaluate(["a"], {"a": 1}, k=10).values["P@10"] == pytest.approx(0.1)
    twice = evaluate(["b", "b", "a"], {"b": 2, "a": 1}, k=2)
    assert twice.values["P@2"] == pytest.approx(1 / 2)  # the copy at rank 2 is not relevant again
    assert twice.values["MAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert twice.values["nDCG@2"] == pytest.approx(2 / (2 + 1 / math.log2(3)))
    assert twice.judged == 2


def test_order_is_the_ranking_not_the_keys():
    assert evaluate(["z", "a"], {"a": 2}).values["MRR"] == pytest.approx(1 / 2)
    assert evaluate(["a", "z"], {"a": 2}).values["MRR"] == pytest.approx(1.0)


@pytest.mark.parametrize("labels, k, relevant_from, message", [
    ({"a": 3}, 10, 1, "label 3 of document 'a' is not on the scale"),
    ({"a": -1}, 10, 1, "not on the scale"),
    ({"a": True}, 10, 1, "not on the scale"),
    ({"a": 1}, 0, 1, "positive whole number"),
    ({"a": 1}, 10, 3, "relevant_from must be 1"),
])
def test_bad_arguments_get_clear_messages(labels, k, relevant_from, message):
    with pytest.raises(InputError, match=message):
        evaluate(["a"], labels, k=k, relevant_from=relevant_from)


def test_means_cover_only_queries_where_a_metric_is_defined():
    results = evaluate_many({"q1": ["a", "b"], "q2": ["b", "a"], "q3": ["c"]}, {"q1": {"a": 2}, "q2": {"a": 2}})
    assert results["q3"].note == NO_JUDGEMENTS
    means, covered = mean_values(list(results.values()))
    assert means["MRR"] == pytest.approx((1 + 1 / 2) / 2) and covered["MRR"] == 2


def _random_case(rng: random.Random, query_count: int):
    rankings, labels = {}, {}
    for q in range(query_count):
        docs = [f"d{q}-{i}" for i in range(rng.randint(1, 25))]
        rng.shuffle(docs)
        rankings[f"q{q}"] = docs
        judged = rng.sample(docs, rng.randint(0, len(docs)))
        labels[f"q{q}"] = {d: rng.choice([0, 0, 1, 2]) for d in judged}
    return rankings, labels


@pytest.mark.parametrize("k, relevant_from", [(5, 1), (10, 2), (3, 1)])
def test_values_equal_trec_eval_through_ir_measures(k, relevant_from):
    rankings, labels = _random_case(random.Random(k * 10 + relevant_from), 40)
    ours = evaluate_many(rankings, labels, k=k, relevant_from=relevant_from)
    qrels = [ir_measures.Qrel(q, d, label) for q, judged in labels.items() for d, label in judged.items()]
    run = [ir_measures.ScoredDoc(q, d, float(len(docs) - i))
           for q, docs in rankings.items() for i, d in enumerate(docs)]
    measures = {f"nDCG@{k}": nDCG @ k, "MRR": RR(rel=relevant_from), "MAP": AP(rel=relevant_from),
                f"P@{k}": P(rel=relevant_from) @ k}
    theirs = {}
    for metric in ir_measures.pytrec_eval.evaluator(list(measures.values()), qrels).iter_calc(run):
        theirs[(metric.query_id, str(metric.measure))] = metric.value
    compared = 0
    for query_id, result in ours.items():
        for name in metric_names(k):
            if name in result.values:
                assert result.values[name] == pytest.approx(theirs[(query_id, str(measures[name]))], abs=1e-9), (
                    query_id, name)
                compared += 1
            else:  # undefined here only where trec_eval has nothing relevant to find
                level = 1 if name.startswith("nDCG") else relevant_from
                assert not [v for v in labels[query_id].values() if v >= level]
    assert compared >= 100


def test_document_ids_of_any_length_reach_ranx_in_one_width():
    """ranx compiles its numba kernels per width of the document ids it is given: ids of a new length must not
    compile them again (a second's stall on a visitor's first comparison), and the values must not change."""
    from ranx.data_structures.common import create_and_sort

    short = evaluate_many({"q": ["a", "b", "c"]}, {"q": {"a": 2, "c": 1}})
    compiled = len(create_and_sort.overloads)
    long_ids = ["document-" + "x" * n for n in (20, 31, 45)]
    longer = evaluate_many({"q": long_ids}, {"q": {long_ids[0]: 2, long_ids[2]: 1}})
    assert len(create_and_sort.overloads) == compiled
    assert longer["q"].values == short["q"].values


def test_threads_evaluating_at_once_get_their_own_values():
    """A request beside the start-up warm-up, or two visitors: numba's default threading layer aborts the process
    when two threads run ranx's parallel kernels at once, so evaluations take turns."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [_random_case(random.Random(seed), 30) for seed in range(8)]
    alone = [evaluate_many(rankings, labels) for rankings, labels in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda case: evaluate_many(*case), cases * 3))
    assert [{q: e.values for q, e in result.items()} for result in together] == [
        {q: e.values for q, e in result.items()} for result in alone * 3]
