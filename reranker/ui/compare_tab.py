"""The inspector's A/B tab: the page's query and documents ranked under two configurations side by side.

Layout and handlers only; the comparison is ``reranker.ranking.compare``, the chart ``charts.slope_figure``, the
tables ``results_table``. Judgements for the query come from the annotation store (``reranker.storage.judgements``).
"""

from __future__ import annotations

import html
import time
import uuid
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from reranker.files import tables
from reranker.view import charts, results_table
from reranker.view.text_cells import shortened
from reranker.ui import common, replacing
from reranker.ui.common import DocumentInputs, Fields, ModelInputs, bind
from reranker.ui.inspector import Inspector
from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.ranking.disagreements import DEFAULT_THRESHOLD
from reranker.ranking.compare import SIDES, Comparison, Side, compare
from reranker.scoring.engine import resolve_instruction
from reranker.serve.model_holder import ModelSettings
from reranker.ranking.metrics import DEFAULT_K, NO_JUDGEMENTS, metric_names
from reranker.scoring.prompt import DEFAULT_INSTRUCTION
from reranker.storage.labels import DEFAULT_RELEVANT_FROM, LABELS

SECOND_PRESET = "Question answering"


@dataclass(frozen=True)
class SideInputs:
    """One side's widget values: its instruction, model and max length."""

    instruction: str | None
    model: str | None
    max_length: Any

    def settings(self, name: str, backend: str) -> ModelSettings:
        """This side's model settings on ``backend``, or a message naming the side and what to fix."""
        try:
            return ModelInputs(self.model, backend, self.max_length).settings()
        except gr.Error as exc:
            raise gr.Error(f"Side {name}: {exc.message}")


def side_labels(a: Side, b: Side) -> tuple[str, str]:
    """Axis labels naming what differs between the sides (instruction, model, max length)."""
    parts: dict[str, list[str]] = {"A": [], "B": []}
    for name, side in zip(SIDES, (a, b)):
        if a.reranker.model != b.reranker.model:
            parts[name].append(side.reranker.model.rsplit("/", 1)[-1])
        if a.reranker.max_length != b.reranker.max_length:
            parts[name].append(f"max {side.reranker.max_length:,}")
        if resolve_instruction(a.instruction) != resolve_instruction(b.instruction):
            parts[name].append(f"“{shortened(resolve_instruction(side.instruction), 28)}”")
    return tuple(f"{name}: {' · '.join(parts[name])}" if parts[name] else name for name in SIDES)


def metrics_html(result: Comparison) -> str:
    """Metric | A | B, the better value of each row in bold, and what the numbers rest on."""
    if not result.metrics:
        return ('<div class="rr-empty">No judgements for this query yet: judge documents in the ranked table above '
                "(relevant / partly relevant / not relevant) or import qrels, and both sides show nDCG, MRR, MAP, "
                "precision and their disagreement counts here.</div>")
    a, b = result.metrics["A"], result.metrics["B"]
    if a.evaluation.note == NO_JUDGEMENTS:
        return (f'<div class="rr-empty">No judgements yet for these documents ({a.evaluation.ignored} judgement(s) '
                "of this query name documents that are not in this set).</div>")
    rows = []
    for name in metric_names(result.k):
        values = (a.evaluation.value(name), b.evaluation.value(name))
        rows.append(_metric_row(name, values, higher_is_better=True))
    rows.append(_metric_row("Disagreements", (a.disagreements, b.disagreements), higher_is_better=False))
    e = a.evaluation
    facts = [f"{e.judged} of {e.judged + e.unjudged} documents judged, {e.relevant} relevant"]
    if e.unjudged:
        facts.append(f"{e.unjudged} unjudged count as not relevant")
    if e.ignored:
        facts.append(f"{e.ignored} judgement(s) of documents not in this set ignored")
    if e.note:
        facts.append(f"MRR, MAP and P@{result.k} need a document judged relevant: {e.note}")
    return ('<table class="rr-table rr-metrics"><thead><tr><th>Metric</th><th>A</th><th>B</th></tr></thead><tbody>'
            + "".join(rows) + f'</tbody></table><p class="rr-metrics-facts"><small>{html.escape("; ".join(facts))}.'
            "</small></p>")


def _metric_row(name: str, values: tuple, *, higher_is_better: bool) -> str:
    cells = []
    defined = [v for v in values if v is not None]
    best = (max if higher_is_better else min)(defined) if len(defined) == 2 and defined[0] != defined[1] else None
    for value in values:
        if value is None:
            cells.append('<td title="undefined: nothing relevant judged">—</td>')
            continue
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        cells.append(f"<td><b>{text}</b></td>" if value == best else f"<td>{text}</td>")
    return f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>"


def _label(labels: dict[str, int], text: str) -> str:
    label = labels.get(document_hash(text))
    return "—" if label is None else f"{LABELS[label]} ({label})"


def judged_moves_html(result: Comparison, labels: dict[str, int], relevant_from: int = DEFAULT_RELEVANT_FROM) -> str:
    """What the comparison did to your judgements: documents judged relevant (at least ``relevant_from``) that
    fell out of the top k under B, and unjudged documents that entered it (judge them now, in Rank & judge)."""
    k = result.k
    fell = [s for s in result.shifts
            if labels.get(document_hash(s.text), -1) >= relevant_from and s.rank_a <= k < s.rank_b]
    entered = [s for s in result.shifts if document_hash(s.text) not in labels and s.rank_b <= k < s.rank_a]
    if not labels:
        return (f'<div class="rr-ab-judged">No judgements of this query yet: judge in <i>Rank &amp; judge</i> to see '
                f"which relevant documents B moves out of the top {k}.</div>")

    def names(shifts):
        return ", ".join(f"<b>{html.escape(s.id)}</b> ({s.rank_a} → {s.rank_b})" for s in shifts) or "none"

    return (f'<div class="rr-ab-judged">Judged relevant that fell out of the top {k} under B: {names(fell)}<br>'
            f"Unjudged that entered the top {k} under B (judge them now in <i>Rank &amp; judge</i>: "
            "<i>Judge now</i> below): "
            f"{names(entered)}</div>")


def moved_html(result: Comparison, labels: dict[str, int] | None = None) -> str:
    """The documents that moved most, with both ranks and scores and your label of each."""
    labels = labels or {}
    moved = result.most_moved()
    if not moved:
        return '<div class="rr-empty">No document changed rank between A and B.</div>'
    terms = results_table.query_terms(result.a.query)
    body = "".join(
        f'<tr><td class="rr-id">{html.escape(s.id)}</td><td class="rr-rank">{s.rank_a} → {s.rank_b}</td>'
        f'<td class="rr-rank" style="color:{"#15803d" if s.shift > 0 else "#b91c1c"}">{s.shift:+d}</td>'
        f'<td class="rr-num">{s.score_a:.3f} → {s.score_b:.3f}</td><td>{_label(labels, s.text)}</td>'
        f'<td class="rr-doc"><div class="rr-snippet">{results_table.snippet(s.text, terms, 200)}</div></td></tr>'
        for s in moved)
    return (f'<div class="rr-table-wrap"><table class="rr-table rr-moved"><caption>{len(moved)} of {result.moved} '
            "moved documents, largest moves first (+ = B ranks it higher)</caption><thead><tr><th>Id</th>"
            "<th>Rank A → B</th><th>Shift</th><th>Score A → B</th><th>Your label</th><th>Document</th></tr>"
            "</thead><tbody>" + body + "</tbody></table></div>")


def summary_markdown(result: Comparison, wall_s: float) -> str:
    """The comparison in a few lines; ``wall_s``: the whole action's wall time (loading, scoring, metrics, views)."""
    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    n = len(result.shifts)
    query = html.escape(shortened(result.a.query, 120), quote=False)
    lines = [f"**{n} documents** for the query “{query}” compared in {wall_s:.2f} s (the whole action) · Kendall's τ "
             f"**{number(result.kendall_tau)}** · Spearman's ρ **{number(result.spearman)}** · {result.moved} moved"]
    for name, run in zip(SIDES, (result.a, result.b)):
        lines.append(f"**{name}**: “{html.escape(shortened(run.instruction, 90), quote=False)}” · "
                     f"`{html.escape(run.model)}`, max length {run.max_length:,}, {run.backend} · "
                     f"scoring {run.seconds:.2f} s · {run.cache_hits} of {n} from the cache")
    return "  \n".join(lines)


def comparison_frame(result: Comparison) -> pd.DataFrame:
    """One row per document: id, both ranks and scores, the shift, the text (for the CSV download)."""
    return pd.DataFrame([{"id": s.id, "rank_a": s.rank_a, "rank_b": s.rank_b, "shift": s.shift,
                          "score_a": s.score_a, "score_b": s.score_b, "index": s.index, "text": s.text}
                         for s in sorted(result.shifts, key=lambda s: s.rank_a)])


class CompareTab:
    """Handlers of the A/B tab, sharing the page's models, presets, documents and export folder."""

    def __init__(self, inspector: Inspector):
        self.inspector = inspector
        self.annotations: AnnotationStore = inspector.annotator.store  # the judgements the ranked table records

    def run(self, query, docs: DocumentInputs, backend, batch_size, side_a: SideInputs, side_b: SideInputs, k,
            relevant_from, threshold, progress=gr.Progress(), request: gr.Request = None,
            profile: gr.OAuthProfile | None = None):
        """Rank the page's query and documents under both sides: summary, metrics, slope chart, moved documents,
        both tables and the CSV of both rankings (the visitor's own judgements count)."""
        started = time.perf_counter()
        owner = self.inspector.visitors.owner(request, profile)
        with self.inspector.visitors.run(request, profile):
            result, *shown = self._run(query, docs, backend, batch_size, side_a, side_b, k, relevant_from, threshold,
                                       progress, owner)
        return summary_markdown(result, time.perf_counter() - started), *shown

    @common.shows_errors
    def _run(self, query, docs: DocumentInputs, backend, batch_size, side_a: SideInputs, side_b: SideInputs, k,
             relevant_from, threshold, progress, owner: str):
        inputs = (side_a, side_b)
        sides = [side.settings(name, backend) for name, side in zip(SIDES, inputs)]
        k = common.k_value(k)
        found = self.inspector.to_rank(query, docs)
        for settings in sides:  # both sides refused before either loads
            self.inspector.holder.allow(settings)
        rerankers = [self.inspector.reranker(settings, progress, f"Loading {settings.model_id} for side {name}…")
                     for name, settings in zip(SIDES, sides)]
        a, b = (Side(reranker, side.instruction) for reranker, side in zip(rerankers, inputs))
        labels = self.annotations.labels_for(query, owner=owner)
        result = compare(
            query, found, a, b, batch_size=int(batch_size or 1), labels=labels, k=k,
            relevant_from=int(relevant_from), threshold=float(threshold),
            progress=lambda done, total, side: progress((done, total), desc=f"Scoring side {side}",
                                                         unit="documents"))
        for note in result.notes:
            gr.Info(common.message(note))
        label_a, label_b = side_labels(a, b)
        max_a, max_b = result.a.max_length, result.b.max_length
        by_index = {s.index: labels[document_hash(s.text)] for s in result.shifts if document_hash(s.text) in labels}
        return (
            result,
            metrics_html(result),
            charts.slope_figure(result.shifts, label_a, label_b, by_index),
            judged_moves_html(result, labels, int(relevant_from)) + moved_html(result, labels),
            results_table.render(result.a.rows, query, max_length=max_a, labels=labels),
            results_table.render(result.b.rows, query, max_length=max_b, labels=labels),
            self._export(result),
        )

    @staticmethod
    def judge_with_b(undo: replacing.Undo, instruction_b, query, instruction, pasted, mode):
        """*Rank & judge* with side B's instruction (the A/B tab ranks its query and documents), to judge what B
        brought into the top k; the instruction it replaces is kept for ``undo``."""
        if not (query or "").strip():
            raise gr.Error("Type a query and documents in Rank & judge first.")
        return (*undo.replace((query, instruction_b, pasted, mode), (query, instruction, pasted, mode),
                              "Rank & judge now has side B's instruction: press Rank documents, then judge the "
                              "documents B brought into the top k."),
                gr.Tabs(selected="rank"))

    def _export(self, result: Comparison) -> str:
        common.prune(self.inspector.export_dir)
        path = self.inspector.export_dir / f"ab-{result.a.timestamp.replace(':', '')}-{uuid.uuid4().hex[:6]}.csv"
        tables.write_csv(comparison_frame(result), path)
        return str(path)


def build_tab(inspector: Inspector, *, query, instruction, docs: Fields, settings: Fields, batch_size,
              rank_undo: replacing.Undo, workspaces: gr.Tabs) -> replacing.Undo:
    """The "A/B compare" tab, wired to the page's query, instruction, document inputs (``DocumentInputs``),
    model settings (``ModelInputs``) and batch size; ``rank_undo``: *Rank & judge*'s inputs (in ``workspaces``)
    with their Undo, for "judge now". Returns the Undo of the inputs another workspace may fill in (the page's
    query, pasted documents, split mode and upload, then each side's instruction, model and max length), for the
    sweep's click-through."""
    page_instruction, (page_model, backend, page_max_length) = instruction, settings.components
    tab = CompareTab(inspector)
    default = inspector.holder.default
    with gr.Tab("A/B compare"):
        gr.Markdown("Rank the query and documents of *Rank & judge* under two configurations (another "
                    "instruction, model or max length) and see what moved. Pairs scored before come from the cache.")
        side_inputs = {}
        with gr.Row():
            for name, preset_name in (("A", common.DEFAULT_PRESET), ("B", SECOND_PRESET)):
                all_presets = inspector.initial_presets()
                with gr.Column(), gr.Group():
                    gr.Markdown(f"#### Side {name}")
                    preset = gr.Dropdown(list(all_presets), value=preset_name, label=f"{name}: instruction preset")
                    instruction = gr.Textbox(all_presets.get(preset_name, DEFAULT_INSTRUCTION),
                                             label=f"{name}: instruction", lines=2, max_lines=6)
                    with gr.Row():
                        model = gr.Dropdown(inspector.model_choices(), value=default.model, label=f"{name}: model",
                                            allow_custom_value=True, scale=3)
                        max_length = gr.Number(default.max_length, label=f"{name}: max length", precision=0,
                                               minimum=64, scale=2)
                    copy = gr.Button("↺ Use the page's instruction, model and max length", size="sm")
                preset.input(inspector.choose_preset, preset, instruction, queue=False, api_name=False)
                preset.focus(inspector.preset_choices, None, preset, queue=False,
                             api_name=False)
                copy.click(lambda *values: values, [page_instruction, page_model, page_max_length],
                           [instruction, model, max_length], queue=False, api_name=False)
                side_inputs[name] = Fields(SideInputs, suffix=f"_{name.lower()}", instruction=instruction,
                                           model=model, max_length=max_length)
        with gr.Row():
            k = gr.Number(DEFAULT_K, label="k for nDCG@k and P@k", precision=0, minimum=1, scale=1)
            relevant_from = gr.Radio(common.RELEVANCE_CHOICES, value=DEFAULT_RELEVANT_FROM,
                                     label="Relevant for MRR, MAP and P@k", scale=2)
            threshold = gr.Slider(0, 1, value=DEFAULT_THRESHOLD, step=0.01, scale=2,
                                  label="Disagreement threshold (the model says relevant at or above it)")
        run_button = gr.Button("Compare A and B", variant="primary")
        side_components = [c for name in SIDES for c in side_inputs[name].components]
        undo = replacing.Undo([query, *docs.components[:3], *side_components],
                              "↶ Undo: put back the query, documents and sides the sweep replaced",
                              elem_id="rr-undo-ab", what="query, documents and A/B settings")
        summary = gr.Markdown()
        metrics_view = gr.HTML(elem_classes="rr-ab-metrics")
        slope = gr.Plot(label="Rank under A and under B", show_label=False, elem_classes="rr-ab-slope")
        moved = gr.HTML(elem_classes="rr-ab-moved")
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("#### Ranking A")
                table_a = gr.HTML(elem_classes="rr-ab-table-a")
            with gr.Column():
                gr.Markdown("#### Ranking B")
                table_b = gr.HTML(elem_classes="rr-ab-table-b")
        with gr.Row():
            download = gr.DownloadButton("Download both rankings (CSV)", value=None, size="sm")
            judge_button = gr.Button("Judge now: Rank & judge with B's instruction ↗", size="sm",
                                     elem_id="rr-ab-judge-now")
    run = bind(tab.run, query, docs, backend, batch_size, side_inputs["A"], side_inputs["B"], k, relevant_from,
               threshold)
    run_button.click(run, run.inputs, [summary, metrics_view, slope, moved, table_a, table_b, download],
                     api_name="compare", concurrency_id="model", show_progress_on=[metrics_view])
    instruction_b = side_inputs["B"].components[0]
    judge_button.click(lambda *values: tab.judge_with_b(rank_undo, *values),
                       [instruction_b, *rank_undo.components], [*rank_undo.outputs, workspaces], api_name=False)
    undo.wire()
    return undo
