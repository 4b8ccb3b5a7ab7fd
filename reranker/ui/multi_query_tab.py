"""The inspector's multi-query tab: upload many (query, document[, label]) rows, or TREC topics + qrels + a
documents file, score them all with a progress bar, see metrics per query and on average, download the scores.

Layout and handlers only; the work is ``reranker.ranking.multi_query``.
"""

from __future__ import annotations

import html
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from reranker.files import tables
from reranker.files import judged_pairs
from reranker.view.numbers import number
from reranker.ranking import multi_query
from reranker.ui import common
from reranker.ui.judged_tab import JudgedQueries, Stored
from reranker.ui.common import Fields, ModelInputs, bind
from reranker.ui.inspector import Inspector
from reranker.errors import RerankerError
from reranker.ranking.metrics import DEFAULT_K, metric_names
from reranker.files.judged_pairs import MAX_PAIRS, TableColumns
from reranker.scoring.prompt import DEFAULT_INSTRUCTION
from reranker.storage.labels import DEFAULT_RELEVANT_FROM

NONE = "(none)"
TABLE_TYPES = [".csv", ".tsv", ".jsonl", ".parquet"]
INPUT_KINDS = [("Pair table (CSV, TSV, JSONL, Parquet)", "table"), ("TREC topics + qrels + documents", "trec")]
OUTPUT_FORMATS = [("CSV", ".csv"), ("Parquet", ".parquet")]
ROLES = ("query", "document", "label", "query_id", "doc_id")


def _column(choice: str | None) -> str | None:
    return None if choice in (None, "", NONE) else choice


@dataclass(frozen=True)
class PairInputs:
    """The tab's input widgets: the input kind, a pair table and its role columns, or the three TREC files."""

    kind: str
    table: Any
    query_col: str | None
    document_col: str | None
    label_col: str | None
    query_id_col: str | None
    doc_id_col: str | None
    topics: Any
    qrels: Any
    corpus: Any

    def name(self) -> str:
        """The uploaded file(s) by name, for the summary."""
        files = [self.table] if self.kind != "trec" else [self.topics, self.qrels, self.corpus]
        names = []
        for upload in files:
            path = upload if isinstance(upload, str) else getattr(upload, "name", None) or (upload or {}).get("path")
            if path:
                names.append(Path(path).name)
        return " + ".join(names)

    def read(self) -> judged_pairs.PairSet:
        """The pairs these inputs name, or a message that says which file or column is missing."""
        path = common.upload_path
        if self.kind == "trec":
            files = {"topics": path(self.topics), "qrels": path(self.qrels), "documents": path(self.corpus)}
            missing = [name for name, value in files.items() if not value]
            if missing:
                raise gr.Error(f"Upload the {' and '.join(missing)} file{'s' if len(missing) > 1 else ''} "
                               "for a TREC input.")
            return judged_pairs.read_trec(files["topics"], files["qrels"], files["documents"])
        if not path(self.table):
            raise gr.Error("Upload a pair table first (.csv, .tsv, .jsonl or .parquet with query and document "
                           "columns, and optionally a label column).")
        if not _column(self.query_col) or not _column(self.document_col):
            names = ", ".join(repr(c) for c in multi_query.table_columns(path(self.table)))
            raise gr.Error(common.message(f"Choose which columns hold the query and the document; the file's "
                                          f"columns are: {names}."))
        columns = TableColumns(query=self.query_col, document=self.document_col, label=_column(self.label_col),
                               query_id=_column(self.query_id_col), doc_id=_column(self.doc_id_col))
        return judged_pairs.read_table(path(self.table), columns)


class MultiQueryTab:
    """Handlers of the multi-query tab, sharing the page's models and export folder."""

    def __init__(self, inspector: Inspector):
        self.inspector = inspector

    def inspect_table(self, upload):
        """Column pickers for an uploaded pair table, filled with the likeliest columns."""
        hidden = [gr.update(visible=False, choices=[], value=None)] * len(ROLES)
        try:
            path = common.upload_path(upload)
            if not path:
                return hidden
            columns = judged_pairs.table_columns(path)
        except RerankerError as exc:
            gr.Warning(common.message(str(exc)))
            return hidden
        try:
            guessed = judged_pairs.guess_columns(columns)
        except RerankerError as exc:
            gr.Warning(common.message(str(exc)))
            guessed = TableColumns(query="", document="")
        updates = []
        for role in ROLES:
            optional = role not in ("query", "document")
            value = getattr(guessed, role) or (NONE if optional else None)
            updates.append(gr.update(visible=True, choices=([NONE] if optional else []) + columns, value=value))
        return updates

    def run(self, source: PairInputs, instruction, model: ModelInputs, batch_size, k, relevant_from, output_format,
            progress=gr.Progress(), request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Score every pair: summary, metrics per query, rejected rows, the scored file and the rejects file."""
        started = time.perf_counter()
        with self.inspector.visitors.run(request, profile):
            pairs, result, *shown = self._run(source, instruction, model, batch_size, k, relevant_from, output_format,
                                              progress)
        return result, self.summary(pairs, result, time.perf_counter() - started, source.name()), *shown

    @common.shows_errors
    def _run(self, source: PairInputs, instruction, model: ModelInputs, batch_size, k, relevant_from, output_format,
             progress):
        settings = model.settings()
        k = common.k_value(k)
        progress(0, desc="Reading the file…")
        pairs = source.read()
        reranker = self.inspector.reranker(settings, progress, f"Loading {settings.model_id} (first run only)…")
        result = multi_query.run(
            reranker, pairs, instruction, batch_size=int(batch_size or 1), k=k, relevant_from=int(relevant_from),
            progress=lambda done, total: progress((done, total), desc="Scoring", unit="pairs"))
        common.prune(self.inspector.export_dir)
        stem = self.inspector.export_dir / f"multi-query-{uuid.uuid4().hex[:8]}"
        scored = multi_query.write_scored(result, stem.with_suffix(output_format))
        rejects, rejects_frame = None, judged_pairs.rejects_frame(result.rejects)
        if result.rejects:
            rejects = stem.with_name(stem.name + "-rejects.csv")
            tables.write_csv(rejects_frame, rejects)
            gr.Warning(common.message(f"{len(result.rejects)} row(s) could not be used: see the list under "
                                             "the results (row numbers count from the first data row or line)."))
        return (
            pairs, result,
            self.per_query_table(result),
            gr.update(value=rejects_frame, visible=bool(result.rejects)),
            str(scored),
            gr.update(value=str(rejects) if rejects else None, visible=rejects is not None),
        )

    @staticmethod
    def summary(pairs: judged_pairs.PairSet, result: multi_query.MultiQueryResult, wall_s: float,
                source: str = "") -> str:
        """The run in a few lines, naming its inputs (``source``: the file(s), the instruction, the model);
        ``wall_s``: the whole action's wall time (reading, scoring, metrics, files)."""
        instruction = " ".join(result.instruction.split())
        lines = [f"**{len(result.scored):,} pairs** for **{pairs.queries:,} queries**"
                 + (f" from {html.escape(source, quote=False)}" if source else "")
                 + f" in {wall_s:.2f} s (the whole action; scoring {result.seconds:.2f} s) · {result.cache_hits:,} "
                 f"from the cache · `{html.escape(result.model)}`, max length {result.max_length:,} · instruction "
                 f"“{html.escape(instruction[:90] + ('…' if len(instruction) > 90 else ''), quote=False)}”"]
        if result.means:
            averages = " · ".join(f"{name} **{result.means[name]:.4f}** ({result.covered[name]} of {pairs.queries})"
                                  for name in metric_names(result.k) if name in result.means)
            lines.append(f"Averages over the queries where each metric is defined: {averages}")
        elif pairs.has_labels:
            lines.append("No query has a relevant label yet, so there are no metrics to average.")
        else:
            lines.append("No label column: scores only. Add a `label` column (0, 1, 2) for nDCG, MRR, MAP and P@k.")
        if result.rejects:
            lines.append(f"⚠ {len(result.rejects):,} row(s) could not be used: listed below.")
        return "  \n".join(lines)

    @staticmethod
    def open_row(result: multi_query.MultiQueryResult | None, judged: JudgedQueries, query, instruction, pasted,
                 mode, evt: gr.SelectData):
        """A click on a row of the per-query table: that query, its documents (best first) and the run's
        instruction in *Rank & judge*, as the judged-data workspace brings a query back (saying so, with Undo)."""
        if result is None:
            raise gr.Error("Score the queries first.")
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else None
        if row is None or not 0 <= row < len(result.per_query):
            raise gr.Error("Choose a query in the table.")
        query_id = result.per_query.iloc[row]["query_id"]
        scored = result.scored[result.scored["query_id"] == query_id]
        stored = Stored(str(scored["query"].iloc[0]), result.instruction, scored["document"].astype(str).tolist())
        return judged.bring_back(stored, query, instruction, pasted, mode)

    @staticmethod
    def per_query_table(result: multi_query.MultiQueryResult) -> pd.DataFrame:
        table = result.per_query.copy()
        for name in metric_names(result.k):
            table[name] = table[name].map(number)
        return table


def build_tab(inspector: Inspector, *, settings: Fields, batch_size, judged: JudgedQueries,
              workspaces: gr.Tabs) -> None:
    """The "Multi-query" tab; ``settings`` are the page's model inputs (``ModelInputs``); ``judged`` brings a
    query of the results back into *Rank & judge* (in ``workspaces``)."""
    tab = MultiQueryTab(inspector)
    with gr.Tab("Multi-query"):
        state = gr.State(None)  # the last run's result, for its rows' click-through
        gr.Markdown(
            "Score many queries at once and measure the ranking against your labels. Upload a **pair table** with "
            "`query` and `document` columns (optionally `label` 0/1/2, `query_id`, `doc_id`), or **TREC** topics, "
            f"qrels and a documents file. Up to {MAX_PAIRS:,} pairs here; for larger jobs use "
            "`python -m reranker score` (resumable). The model is the one in the settings panel.")
        kind = gr.Radio(INPUT_KINDS, value="table", label="Input")
        with gr.Group(visible=True) as table_group:
            table = gr.File(label="Pair table (.csv .tsv .jsonl .parquet)", file_types=TABLE_TYPES, type="filepath",
                            elem_id="rr-mq-table")
            with gr.Row():
                pickers = [gr.Dropdown(label=label, visible=False, allow_custom_value=True) for label in (
                    "Query column", "Document column", "Label column (0/1/2)", "Query id column", "Document id column")]
        with gr.Group(visible=False) as trec_group, gr.Row():
            topics = gr.File(label="Topics (qid<TAB>text, or JSONL)", type="filepath")
            qrels = gr.File(label="Qrels (qid 0 docid label)", type="filepath")
            corpus = gr.File(label="Documents (JSONL _id/title/text, or docid<TAB>text)", type="filepath")
        with gr.Row():
            preset = gr.Dropdown(list(inspector.initial_presets()), value=common.DEFAULT_PRESET, label="Instruction preset",
                                 scale=1)
            instruction = gr.Textbox(DEFAULT_INSTRUCTION, label="Instruction (for every row)", lines=1, max_lines=4,
                                     scale=3)
        with gr.Row():
            k = gr.Number(DEFAULT_K, label="k for nDCG@k and P@k", precision=0, minimum=1)
            relevant_from = gr.Radio(common.RELEVANCE_CHOICES, value=DEFAULT_RELEVANT_FROM,
                                     label="Relevant for MRR, MAP and P@k")
            output_format = gr.Radio(OUTPUT_FORMATS, value=".csv", label="Scored file")
        run_button = gr.Button("Score all queries", variant="primary")
        summary = gr.Markdown()
        per_query = gr.Dataframe(label="Metrics per query (click a row to open its query in Rank & judge)",
                                 interactive=False, max_height=420, wrap=True, elem_classes="rr-mq-per-query")
        with gr.Row():
            scored_download = gr.DownloadButton("Download scored pairs", value=None, size="sm")
            rejects_download = gr.DownloadButton("Download rejected rows (CSV)", value=None, size="sm", visible=False)
        rejects = gr.Dataframe(label="Rows that could not be used", interactive=False, visible=False, max_height=300,
                               wrap=True)

    kind.change(lambda value: (gr.update(visible=value == "table"), gr.update(visible=value == "trec")), kind,
                [table_group, trec_group], queue=False, api_name=False)
    table.change(tab.inspect_table, table, pickers, queue=False, api_name=False)
    preset.input(inspector.choose_preset, preset, instruction, queue=False, api_name=False)
    preset.focus(inspector.preset_choices, None, preset, queue=False, api_name=False)
    role_columns = {f"{role}_col": picker for role, picker in zip(ROLES, pickers)}
    source = Fields(PairInputs, kind=kind, table=table, **role_columns, topics=topics, qrels=qrels, corpus=corpus)
    run = bind(tab.run, source, instruction, settings, batch_size, k, relevant_from, output_format)
    run_button.click(run, run.inputs, [state, summary, per_query, rejects, scored_download, rejects_download],
                     api_name="multi_query", concurrency_id="model", show_progress_on=[per_query])
    per_query.select(open_row_of(judged), [state, *judged.undo.components], [*judged.undo.outputs, workspaces],
                     api_name=False)


def open_row_of(judged: JudgedQueries):
    """The per-query table's select handler, bringing queries back through ``judged``."""
    def open_row(result, query, instruction, pasted, mode, evt: gr.SelectData):
        return MultiQueryTab.open_row(result, judged, query, instruction, pasted, mode, evt)
    return open_row
