""""Why this score": explanations of ranked rows in the inspector (the row's Explain button, a rank, or the top k),
with the cost shown before scoring, a progress bar, and the ranking exported with its explanations.

The table's Explain buttons send ``{rank, doc}`` through the table component's ``submit`` event (see
``view/judging_table.js``); the panel's buttons are also the API (``/explain``, ``/explain_top_k``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from reranker.explain import explanation as ex
from reranker.explain import export as explain_export
from reranker.ranking import inspection
from reranker.serve.model_holder import ModelHolder
from reranker.storage.judgements import document_hash
from reranker.ui import common
from reranker.ui.visitors import Visitors
from reranker.view import explain_view

# Labels without the word "query": the page's query box is found by its label "Query".
ANALYSIS_CHOICES = [("Each sentence removed (occlusion)", "occlusion"), ("Each sentence alone (sufficiency)",
                                                                        "sufficiency"),
                    ("Each search word removed", "query_words"), ("Each instruction clause removed",
                                                                  "instruction_clauses")]
DEFAULT_TOP_K = 3


@dataclass
class Controls:
    """The explanation panel's inputs and outputs."""

    analyses: gr.CheckboxGroup
    rank: gr.Number
    explain: gr.Button
    k: gr.Number
    explain_top: gr.Button
    cost: gr.Markdown
    view: gr.HTML
    csv: gr.DownloadButton
    json: gr.DownloadButton
    explained: gr.State


def _run_key(result: inspection.RunResult) -> tuple:
    return result.timestamp, result.seconds, result.query, result.instruction, result.model


class Explainer:
    """Handlers for explanations, bound to one process's models and export folder."""

    def __init__(self, holder: ModelHolder, export_dir: Path, visitors: Visitors | None = None):
        self.holder = holder
        self.export_dir = export_dir
        self.visitors = visitors or Visitors()

    @staticmethod
    def _result(state: common.Ranking | None) -> inspection.RunResult:
        if not state:
            raise gr.Error("Run a query first, then explain the ranked documents.")
        return state.result

    @staticmethod
    def _rows(result: inspection.RunResult, ranks: list[int]) -> list[inspection.RankedRow]:
        by_rank = {r.rank: r for r in result.rows}
        missing = [r for r in ranks if r not in by_rank]
        if missing:
            raise gr.Error(f"There is no document ranked {missing[0]} in the last run "
                           f"(ranks 1 to {len(result.rows)}).")
        return [by_rank[r] for r in ranks]

    @common.shows_errors
    def _plan(self, state, ranks: list[int], analyses):
        result = self._result(state)
        rows = self._rows(result, ranks)
        reranker = self.holder.get(state.settings)
        planned = ex.plan(reranker, result.query, [(r.id, r.text) for r in rows], instruction=result.instruction,
                          analyses=list(analyses or ()))
        return result, rows, reranker, planned

    def cost(self, state, k, analyses) -> str:
        """What explaining the top ``k`` would score, before scoring: pairs and how many are cached."""
        if not state:
            return "Rank documents first; then explain a row (its **Explain** button) or the top k."
        result = self._result(state)
        if self.holder.state(state.settings)[0] != "ready":  # an estimate never loads a model (nor skips the limit)
            return "The cost is shown while the model of this ranking is loaded; explaining loads it again."
        try:
            ranks = list(range(1, min(_k(k), len(result.rows)) + 1))
            result, rows, reranker, planned = self._plan(state, ranks, analyses)
        except gr.Error as exc:
            return f"⚠ {exc.message}"
        return f"Top {len(rows)}: {planned.summary()}, {planned.cached(reranker)} already in the cache."

    def explain_clicked(self, state, explained, analyses, batch_size, evt: gr.EventData, progress=gr.Progress(),
                        request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """A row's Explain button in the ranked table."""
        data = getattr(evt, "_data", None) or {}
        try:
            rank = int(data["rank"])
        except (KeyError, TypeError, ValueError):
            raise gr.Error("Run a query first, then explain the ranked documents.")
        doc = data.get("doc")
        if doc is not None:  # the row's document, in case the table shown is not the session's last run
            row = next((r for r in self._result(state).rows if document_hash(r.text) == doc), None)
            if row is None:
                raise gr.Error("That document is not in the last run: rank again, then explain.")
            rank = row.rank
        with self.visitors.run(request, profile):
            return self._explain(state, explained, [rank], analyses, batch_size, progress)

    @staticmethod
    def new_run(state, explained):
        """A new run: explanations of the last one are not shown as this one's."""
        if explained and state is not None and explained.get("run") == _run_key(state.result):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return explain_view.render([]), None, None, None

    def explain_rank(self, state, explained, rank, analyses, batch_size, progress=gr.Progress(),
                     request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Explain the row ranked ``rank`` (the API's /explain)."""
        try:
            rank = int(rank)
        except (TypeError, ValueError):
            raise gr.Error(common.message(f"The rank must be a whole number, got {rank!r}."))
        with self.visitors.run(request, profile):
            return self._explain(state, explained, [rank], analyses, batch_size, progress)

    def explain_top(self, state, explained, k, analyses, batch_size, progress=gr.Progress(),
                    request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Explain the best ``k`` rows in one batched scoring (the API's /explain_top_k)."""
        result = self._result(state)
        ranks = list(range(1, min(_k(k), len(result.rows)) + 1))
        with self.visitors.run(request, profile):
            return self._explain(state, explained, ranks, analyses, batch_size, progress)

    @common.shows_errors
    def _explain(self, state, explained, ranks: list[int], analyses, batch_size, progress):
        result, rows, reranker, planned = self._plan(state, ranks, analyses)
        cached = planned.cached(reranker)
        what = f"#{ranks[0]}" if len(ranks) == 1 else f"the top {len(ranks)}"
        cost = f"Explaining {what}: {planned.summary()}, {cached} already in the cache"
        progress((0, planned.pairs), desc=cost, unit="pairs")
        started = time.perf_counter()
        done = ex.explain(reranker, planned, batch_size=int(batch_size) if batch_size else None,
                          progress=lambda n, total: progress((n, total), desc=cost, unit="pairs"))
        seconds = time.perf_counter() - started
        if not explained or explained.get("run") != _run_key(result):
            explained = {"run": _run_key(result), "by_rank": {}}
        by_rank = {**explained["by_rank"], **{row.rank: e for row, e in zip(rows, done)}}
        explained = {"run": explained["run"], "by_rank": by_rank}
        labels = [f"#{row.rank} · {row.id}" for row in rows]
        html = explain_view.render(done, labels, summary=f"{cost}; scored in {seconds:.2f} s.")
        common.prune(self.export_dir)
        stem = self.export_dir / f"explained-{result.timestamp.replace(':', '')}-{uuid.uuid4().hex[:6]}"
        csv_path = explain_export.to_csv(result, result.rows, by_rank, stem.with_suffix(".csv"))
        json_path = explain_export.to_json(result, result.rows, by_rank, stem.with_suffix(".json"))
        return html, explained, csv_path, json_path


def _k(k) -> int:
    value = common.k_value(k)
    if value < 1:
        raise gr.Error(common.message(f"k must be at least 1, got {value}."))
    return value


def build(explainer: Explainer) -> Controls:
    """The explanation panel; place under the ranked table."""
    explained = gr.State(None)
    with gr.Accordion("Why this score: explain rows (press Explain in a row, or explain the top k)", open=True,
                      elem_id="rr-explain"):
        analyses = gr.CheckboxGroup(ANALYSIS_CHOICES, value=list(ex.ANALYSES), label="What to compute")
        with gr.Row(equal_height=True):
            rank = gr.Number(1, label="Rank", precision=0, minimum=1, scale=1)
            explain = gr.Button("Explain this rank", size="sm", scale=1)
            k = gr.Number(DEFAULT_TOP_K, label="k", precision=0, minimum=1, scale=1)
            explain_top = gr.Button("Explain top-k", size="sm", scale=1)
        cost = gr.Markdown(explainer.cost(None, DEFAULT_TOP_K, list(ex.ANALYSES)), elem_id="rr-explain-cost")
        view = gr.HTML(explain_view.render([]), elem_id="rr-explanations")
        with gr.Row():
            csv = gr.DownloadButton("Download ranking + decisive sentences (CSV)", value=None, size="sm")
            json = gr.DownloadButton("Download ranking + explanations (JSON)", value=None, size="sm")
    return Controls(analyses, rank, explain, k, explain_top, cost, view, csv, json, explained)


def wire(explainer: Explainer, controls: Controls, *, table: gr.HTML, result_state: gr.State,
         batch_size: gr.Number) -> None:
    """Connect the table's Explain buttons and the panel."""
    c = controls
    outputs = [c.view, c.explained, c.csv, c.json]
    table.submit(explainer.explain_clicked, [result_state, c.explained, c.analyses, batch_size], outputs,
                 api_name=False, concurrency_id="model", show_progress_on=[c.view])
    c.explain.click(explainer.explain_rank, [result_state, c.explained, c.rank, c.analyses, batch_size], outputs,
                    api_name="explain", concurrency_id="model", show_progress_on=[c.view])
    c.explain_top.click(explainer.explain_top, [result_state, c.explained, c.k, c.analyses, batch_size], outputs,
                        api_name="explain_top_k", concurrency_id="model", show_progress_on=[c.view])
    result_state.change(explainer.new_run, [result_state, c.explained], outputs, api_name=False, queue=False)
    for trigger in (result_state.change, c.k.change, c.analyses.change):
        trigger(explainer.cost, [result_state, c.k, c.analyses], c.cost, api_name=False, show_progress="hidden",
                concurrency_limit=None)

