"""The instruction sweep tab driven through gradio_client on the tiny model: 3 instructions over a small judged set
from the judgements store, a TREC baseline row, the leaderboard checked against trec_eval (ir-measures) on the
engine's own scores, calibration and the threshold, the click-through to A/B, saving the winner, the report."""

from __future__ import annotations

import math

import ir_measures
import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from reranker.files import judgement_files
from reranker.files.tables import read_csv
from reranker.scoring.prompt import INSTRUCTION_PRESETS
from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.storage.presets import PresetStore
from reranker.ui.sweep_tab import instruction_choices
from tests.support.app_server import serve
from tests.support.samples import JUDGED

PRESETS = list(INSTRUCTION_PRESETS)[:2]
PASTED = "Judge whether the passage is about the same topic as the query"
K = 3


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("sweep-data")
    store = AnnotationStore(Database(data / "reranker.sqlite3"))
    for query, docs in JUDGED.items():
        for text, label in docs:
            store.save(query, text, label)
    with serve(tiny_model, "transformers", data) as url:
        yield url, data


def _ids(query, text):
    return judgement_files.query_id(query), judgement_files.doc_id(document_hash(text))


@pytest.fixture
def bm25(tmp_path):
    """A poor first-stage run in the store's export ids: the first two queries' documents worst first (stored
    order reversed); the last query is left out."""
    lines = []
    for query, docs in list(JUDGED.items())[:2]:
        for rank, (text, _) in enumerate(reversed(docs), start=1):
            qid, did = _ids(query, text)
            lines.append(f"{qid} Q0 {did} {rank} {10 - rank} bm25")
    path = tmp_path / "bm25.trec"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sweep(client, model, baseline=None, **changes):
    inputs = dict(source="store", table=None, topics=None, qrels=None, corpus=None, chosen=PRESETS, pasted=PASTED,
                  models="", max_lengths="", baseline_file=handle_file(str(baseline)) if baseline else None,
                  baseline_name="BM25", k=K, relevant_from=1, stat_test="student", model=model,
                  backend="transformers", max_length=512, batch_size=4)
    inputs.update(changes)
    return client.predict(*inputs.values(), api_name="/sweep")


def _trec_eval_ndcg(hf_reranker, instruction):
    """Mean nDCG@K over the queries, from the engine's own scores and trec_eval's measure."""
    qrels, scored = [], []
    for query, docs in JUDGED.items():
        judgements = hf_reranker.score([(query, text) for text, _ in docs], instruction=instruction)
        for (text, label), j in zip(docs, judgements):
            qid, did = _ids(query, text)
            qrels.append(ir_measures.Qrel(qid, did, label))
            scored.append(ir_measures.ScoredDoc(qid, did, j.logodds))
    return ir_measures.calc_aggregate([ir_measures.nDCG @ K], qrels, scored)[ir_measures.nDCG @ K]


def test_sweep_leaderboard_baseline_calibration_and_report(app, tiny_model, hf_reranker, bm25):
    url, data = app
    client = Client(url, verbose=False)
    (summary, board, chart, baseline, metric, versus, versus_chart, query_choice, winner, calibrated_run,
     csv_file, html_file) = sweep(client, tiny_model, bm25)
    baseline, metric, query_choice, calibrated_run = (
        update["value"] for update in (baseline, metric, query_choice, calibrated_run))  # dropdown updates
    assert "**3 variant(s)** × **3 queries**" in summary and "**30 pairs** scored" in summary
    assert "Only 3 queries measured" in summary and "(the whole action)" in summary
    assert "Baseline 'BM25': 1 of 3 queries are not in it" in summary
    frame = pd.DataFrame(board["data"], columns=board["headers"])
    assert len(frame) == 4 and '<span title="an imported run">BM25 (imported)</span>' in frame["run"].tolist()
    settings, leaderboard = read_csv(csv_file)
    assert settings["queries"] == 3 and settings["test"] == "paired t-test" and settings["correction"] == "Holm"
    instructions = {**{name: INSTRUCTION_PRESETS[name] for name in PRESETS}, instruction_choices({}, [], PASTED)[0][0]: PASTED}
    for name, instruction in instructions.items():
        row = leaderboard[leaderboard["run"] == name].iloc[0]
        assert row[f"nDCG@{K}"] == pytest.approx(_trec_eval_ndcg(hf_reranker, instruction), abs=1e-9)
        assert row["instruction"] == instruction and row["pairs"] == 10
    bm25_row = leaderboard[leaderboard["run"] == "BM25"].iloc[0]
    assert bm25_row["kind"] == "imported run"
    # worst first: query 1 has only its label-1 document in the top 3 (at rank 3), query 2 has label 1 at rank 2
    # and label 2 at rank 3, query 3 is missing; the ideal top 3 is 2, 1, 0 in both
    ideal = 2 + 1 / math.log2(3)
    assert bm25_row[f"nDCG@{K}"] == pytest.approx((0.5 / ideal + (1 / math.log2(3) + 1) / ideal + 0) / 3)
    # no ranking of all candidates scores below 0.43 here, so a reranker variant wins
    assert leaderboard[f"nDCG@{K}"].tolist() == sorted(leaderboard[f"nDCG@{K}"], reverse=True)
    best = leaderboard["run"].iloc[0]
    assert best in instructions and winner == best and leaderboard["run"].iloc[-1] == "BM25"
    assert baseline == "BM25" and metric == f"nDCG@{K}"
    assert "winner " in versus["label"] and "against baseline BM25" in versus["label"]  # runs named in the label
    versus_frame = pd.DataFrame(versus["value"]["data"], columns=versus["value"]["headers"])
    assert len(versus_frame) == 3 and query_choice in {_ids(q, d[0][0])[0] for q, d in JUDGED.items()}

    # calibration of the best reranker run, with a Platt fit and a threshold for recall >= 0.8
    run_name = calibrated_run
    state_summary, reliability, pairs, threshold, csv2, html2 = client.predict(
        run_name, 5, "platt", "recall", 0.8, baseline, api_name="/sweep_calibrate")
    assert "**10 judged pairs**" in state_summary and "ECE **" in state_summary and "platt fit" in state_summary
    pairs_frame = pd.DataFrame(pairs["data"], columns=pairs["headers"])
    assert {"score", "calibrated_score"} <= set(pairs_frame.columns) and len(pairs_frame) == 10
    relevant_scores = sorted((float(s) for s, label in zip(pairs_frame["score"], pairs_frame["label"]) if label >= 1),
                             reverse=True)
    # 5 relevant pairs; recall >= 0.8 needs 4 of them: the highest threshold is the 4th best relevant score
    assert len(relevant_scores) == 5 and threshold == pytest.approx(relevant_scores[3], abs=1e-4)
    report = open(html2, encoding="utf-8").read()
    assert "Reliability diagram" in report and "Plotly.newPlot" in report and "against BM25, per query" in report
    assert "&lt;b&gt;semicolons" in report and "<b>semicolons" not in report  # query text is shown as text
    assert client.predict(threshold, 0.5, api_name="/sweep_use_threshold") == pytest.approx(threshold)

    # click through to A/B: the page's query and documents become that query's; side B is the winner
    mine = ["my query", "my documents", "line", None, "my instruction A", tiny_model, 512, "my instruction B", tiny_model,
            256]
    query, pasted, split_mode, upload, *sides = client.predict("BM25", query_choice, *mine,
                                                               api_name="/sweep_open_in_ab")
    judged_query = next(q for q in JUDGED if _ids(q, JUDGED[q][0][0])[0] == query_choice)
    assert query == judged_query and split_mode == "dashes" and upload is None
    assert pasted.split("\n---\n") == [text for text, _ in JUDGED[judged_query]]
    assert sides[:3] == mine[4:7]  # side A: the imported BM25 run has no settings, so A keeps its own
    assert sides[3] == instructions[best]
    # and into Rank & judge: the query, its documents and the winner's instruction
    query, instruction, pasted, split_mode = client.predict(
        query_choice, "my query", "my instruction", "my documents", "line", api_name="/sweep_open_in_rank")
    assert query == judged_query and instruction == instructions[best] and split_mode == "line"
    assert pasted.split("\n") == [text for text, _ in JUDGED[judged_query]]

    client.predict("Sweep winner", api_name="/sweep_save_winner")
    assert PresetStore(Database(data / "reranker.sqlite3"), {}).saved()["Sweep winner"] == instructions[best]


def test_trec_judged_set_and_resume_from_the_cache(app, tiny_model, tmp_path):
    topics, qrels, corpus = tmp_path / "topics.tsv", tmp_path / "qrels.txt", tmp_path / "corpus.tsv"
    topics.write_text("1\twhat causes auroras\n2\tbread recipe\n", encoding="utf-8")
    qrels.write_text("1 0 a 2\n1 0 b 0\n2 0 c 1\n2 0 d 0\n", encoding="utf-8")
    corpus.write_text("a\tSolar particles light the sky.\nb\tBanana bread.\nc\tMix flour, bake.\nd\tTromsø.\n",
                      encoding="utf-8")
    client = Client(app[0], verbose=False)
    files = dict(source="trec", topics=handle_file(str(topics)), qrels=handle_file(str(qrels)),
                 corpus=handle_file(str(corpus)), chosen=PRESETS[:1], pasted="")
    first = sweep(client, tiny_model, **files)[0]
    assert "**1 variant(s)** × **2 queries**" in first and "**4 pairs** scored" in first
    again = sweep(client, tiny_model, **files)[0]
    assert "4 from the cache" in again  # a repeated (or resumed) sweep reads its pairs back


@pytest.mark.parametrize("changes, message", [
    (dict(chosen=[], pasted=""), "Tick at least one preset or paste"),
    (dict(source="table"), "Upload a pair table"),
    (dict(source="trec"), "Upload the topics and qrels and documents files"),
    (dict(max_lengths="long"), "Max lengths must be whole numbers"),
])
def test_bad_input_is_a_message(app, tiny_model, changes, message):
    with pytest.raises(AppError, match=message):
        sweep(Client(app[0], verbose=False), tiny_model, **changes)


def test_a_baseline_with_other_ids_is_a_message(app, tiny_model, tmp_path):
    run = tmp_path / "other.trec"
    run.write_text("1 Q0 doc-a 1 3.5 bm25\n", encoding="utf-8")
    with pytest.raises(AppError, match="names none of the judged set's queries and documents"):
        sweep(Client(app[0], verbose=False), tiny_model, run)
