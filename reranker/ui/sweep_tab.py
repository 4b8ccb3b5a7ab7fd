"""The inspector's "Instruction sweep" tab: instruction variants (presets, edited or pasted ones; models and max
lengths too) x a judged query set -> a leaderboard with confidence intervals and significance, the winner against
a baseline per query (a row opens its query in Rank & judge; click through to the A/B tab too), "save the winner
as a preset", a calibration and threshold panel whose threshold feeds the disagreement view, and CSV / HTML report
downloads. Queries, documents and instructions are shown by their text (ids on hover); every action that fills in
another workspace's inputs says so and can be undone (``replacing``).

Layout and handlers only; the work is ``reranker.tuning``.
"""

from __future__ import annotations

import html
import math
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import pandas as pd

from reranker.errors import InputError
from reranker.files.rows import RejectRow
from reranker.files import judged_pairs
from reranker.view.numbers import number
from reranker.ranking.metrics import DEFAULT_K, metric_names
from reranker.scoring.engine import MODELS
from reranker.serve.model_holder import ModelSettings
from reranker.scoring.prompt import DEFAULT_INSTRUCTION
from reranker.tuning import calibration, leaderboard, report, sweep
from reranker.ui import common, replacing
from reranker.ui.common import Fields, ModelInputs, bind
from reranker.ui.judged_tab import JudgedQueries, Stored
from reranker.view.text_cells import hover, shortened
from reranker.ui.inspector import Inspector

SOURCES = [("Judgements store (what you judged on this page)", "store"), ("Pair table with a label column", "table"),
           ("TREC topics + qrels + documents", "trec")]
TABLE_TYPES = [".csv", ".tsv", ".jsonl", ".parquet"]
ADVISED_QUERIES = 20  # docs/tuning.md: fewer queries cannot separate variants
NAME_CHARS = 48  # a pasted instruction's name: its text, shortened to this (in full on hover)
DOCUMENT_CHARS = 120  # a document's text in the calibration table (in full on hover)
TESTS = [(label, key) for key, label in leaderboard.STAT_TESTS.items()]
FITS = [(label, key) for key, label in calibration.FITS.items()]
SWITCH_TO_AB = """() => {
  const find = (name) => [...document.querySelectorAll('button[role="tab"]')]
    .find((b) => b.textContent.trim() === name);
  const workspace = find('Compare');
  if (workspace) workspace.click();
  setTimeout(() => { const tab = find('A/B compare'); if (tab) tab.click(); window.scrollTo({top: 0}); }, 100);
}"""


def _split(text: str | None, separators: str = ",\n") -> list[str]:
    items = [text or ""]
    for separator in separators:
        items = [part for item in items for part in item.split(separator)]
    return [item.strip() for item in items if item.strip()]


def _short_model(model: str) -> str:
    for alias, hub_id in MODELS.items():
        if model in (alias, hub_id):
            return alias
    return model.rstrip("/").rsplit("/", 1)[-1]


def instruction_choices(presets: dict[str, str], chosen: list[str] | None, pasted: str | None) -> list[tuple[str, str]]:
    """(name, instruction) for the ticked presets, then one per non-empty line of ``pasted``, named by its text in
    quotes (shortened; a number added where two would read the same)."""
    found = [(name, presets[name]) for name in chosen or [] if name in presets]
    unknown = [name for name in chosen or [] if name not in presets]
    if unknown:
        raise InputError(f"Unknown preset(s): {', '.join(map(repr, unknown))}.")
    names = {name for name, _ in found}
    for line in dict.fromkeys(_split(pasted, "\n")):
        name = base = f"“{shortened(line, NAME_CHARS)}”"
        n = 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.add(name)
        found.append((name, line))
    if not found:
        raise InputError("Tick at least one preset or paste at least one instruction (one per line) to sweep.")
    return found


def _max_lengths(text: str | None, default: int) -> list[int]:
    values = _split(text)
    try:
        lengths = [int(v) for v in values] or [default]
    except ValueError:
        raise InputError(f"Max lengths must be whole numbers of tokens separated by commas, got {text!r}.") from None
    if any(v < 64 for v in lengths):
        raise InputError("Each max length must be at least 64 tokens.")
    return list(dict.fromkeys(lengths))


@dataclass(frozen=True)
class SweepInputs:
    """The sweep's widgets: the judged set (its source and files), the variants (ticked presets, pasted
    instructions, models, max lengths), a baseline run, and how the runs are measured and tested."""

    source: str
    table: Any
    topics: Any
    qrels: Any
    corpus: Any
    chosen: list | None
    pasted: str | None
    models: str | None
    max_lengths: str | None
    baseline_file: Any
    baseline_name: str | None
    k: Any
    relevant_from: Any
    stat_test: str


@dataclass(frozen=True)
class VariantSettings:
    """What a sweep's state keeps of a variant: its instruction and model settings (never the engine)."""

    instruction: str | None
    resolved_instruction: str
    model: str
    max_length: int

    @classmethod
    def of(cls, variant: sweep.Variant) -> VariantSettings:
        return cls(variant.instruction, variant.resolved_instruction, variant.reranker.model,
                   variant.reranker.max_length)


@dataclass(frozen=True)
class SweepState:
    """A visitor's last sweep (its ``gr.State``): the result and leaderboard, each variant's settings (never an
    engine: a state must not keep a model alive after the server released it) and the last calibration."""

    result: sweep.SweepResult
    board: leaderboard.Leaderboard
    variants: dict[str, VariantSettings]
    calibration: calibration.Calibration | None = None
    threshold: calibration.Threshold | None = None
    calibrated: str | None = None  # the calibrated run's name

    def query(self, query_id: str) -> sweep.JudgedQuery:
        """The judged query ``query_id`` of this sweep, or a message that it is not in it."""
        found = next((q for q in self.result.judged.queries if q.query_id == query_id), None)
        if found is None:
            raise gr.Error(common.message(f"There is no query {query_id!r} in this sweep."))
        return found


class SweepTab:
    """Handlers of the sweep tab, sharing the page's models, presets, judgements and export folder."""

    def __init__(self, inspector: Inspector):
        self.inspector = inspector
        self.store = inspector.annotator.store

    # --- input -------------------------------------------------------------------------------------
    def judged_set(self, inputs: SweepInputs, owner: str = "") -> tuple[sweep.JudgedSet, list[RejectRow]]:
        """The judged queries of the inputs' source: ``owner``'s judgements in the store, or the uploaded files."""
        path = common.upload_path
        if inputs.source == "store":
            return sweep.from_store(self.store, owner), []
        if inputs.source == "trec":
            files = {"topics": path(inputs.topics), "qrels": path(inputs.qrels), "documents": path(inputs.corpus)}
            missing = [name for name, value in files.items() if not value]
            if missing:
                raise InputError(f"Upload the {' and '.join(missing)} file{'s' if len(missing) > 1 else ''} "
                                 "for a TREC input.")
            pairs = judged_pairs.read_trec(files["topics"], files["qrels"], files["documents"])
            return sweep.from_pairs(pairs, "TREC qrels"), pairs.rejects
        if not path(inputs.table):
            raise InputError("Upload a pair table (.csv, .tsv, .jsonl or .parquet with query, document and label "
                             "columns) or choose another judged set.")
        file = path(inputs.table)
        pairs = judged_pairs.read_table(file, judged_pairs.guess_columns(judged_pairs.table_columns(file)))
        return sweep.from_pairs(pairs, "the uploaded pair table"), pairs.rejects

    def plan(self, inputs: SweepInputs, model: ModelInputs,
             owner: str = "") -> tuple[list[tuple[str, str]], list[ModelSettings]]:
        """The instructions (with ``owner``'s presets) and model settings to sweep, each model checked against the
        server's offer: a sweep is refused before anything is read or loaded."""
        instructions = instruction_choices(self.inspector.presets.all(owner=owner), inputs.chosen, inputs.pasted)
        model_list = list(dict.fromkeys(_split(inputs.models))) or [model.model]
        settings = [ModelInputs(name, model.backend, length).settings()
                    for name in model_list for length in _max_lengths(inputs.max_lengths, int(model.max_length))]
        for s in settings:
            self.inspector.holder.allow(s)
        return instructions, settings

    def variants(self, instructions: list[tuple[str, str]], settings: list[ModelSettings],
                 progress) -> list[sweep.Variant]:
        """Every (model, max length) x instruction of a ``plan``, its models loaded."""
        rerankers = {s: self.inspector.reranker(s, progress, f"Loading {s.model_id} (first use only)…")
                     for s in settings}
        several_models = len({s.model_id for s in settings}) > 1
        several_lengths = len({s.max_length for s in settings}) > 1
        out = []
        for s in settings:
            for name, instruction in instructions:
                parts = [name] + ([_short_model(s.model)] if several_models else []) + (
                    [f"max {s.max_length}"] if several_lengths else [])
                out.append(sweep.Variant(" · ".join(parts), rerankers[s], instruction))
        return out

    # --- the sweep ---------------------------------------------------------------------------------
    def run(self, inputs: SweepInputs, model: ModelInputs, batch_size, progress=gr.Progress(),
            request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Sweep the variants over the judged set (the visitor's own judgements and presets), within the
        visitor's run limit: the state (settings and scores, no engines) and every view of it."""
        started = time.perf_counter()
        k = common.k_value(inputs.k)
        model.settings()  # a clear message for bad settings first
        owner = self.inspector.visitors.owner(request, profile)
        with self.inspector.visitors.run(request, profile):
            return self._run(inputs, model, k, batch_size, progress, owner, started)

    @common.shows_errors
    def _run(self, inputs: SweepInputs, model: ModelInputs, k: int, batch_size, progress, owner: str,
         started: float):
        planned = self.plan(inputs, model, owner)
        progress(0, desc="Reading the judged set…")
        judged, rejects = self.judged_set(inputs, owner)
        baselines = {}
        if common.upload_path(inputs.baseline_file):
            name = " ".join((inputs.baseline_name or "").split()) or "imported run"
            baselines[name] = sweep.read_baseline(common.upload_path(inputs.baseline_file))
        variants = self.variants(*planned, progress)

        def report_progress(done, total, eta, variant):
            left = f" · about {eta:.0f} s left" if eta is not None else ""
            progress((done, total), desc=f"Scoring {variant}{left}", unit="pairs")

        result = sweep.run_sweep(variants, judged, batch_size=int(batch_size or 1), baselines=baselines,
                                 progress=report_progress)
        board = leaderboard.build(result, k=k, relevant_from=int(inputs.relevant_from),
                                  stat_test=inputs.stat_test)
        if rejects:
            gr.Warning(common.message(f"{len(rejects)} row(s) of the judged set could not be used; the first: "
                                      f"row {rejects[0].row}: {rejects[0].reason}."))
        for note in result.notes:
            gr.Info(common.message(note))
        state = SweepState(result, board, {v.name: VariantSettings.of(v) for v in variants})
        names = [row.name for row in board.rows]
        baseline = names[-1] if len(names) > 1 else names[0]
        baseline = next((row.name for row in board.rows if row.imported), baseline)
        versus = self._versus(state, baseline, board.metrics[0])
        runs = [row.name for row in board.rows if not row.imported]
        shown = (self.leaderboard_table(state), report.leaderboard_figure(board))
        exports = self._exports(state, baseline)
        summary = self.summary(result, board, time.perf_counter() - started)  # last: the whole action's time
        return (
            state,
            summary,
            *shown,
            gr.update(choices=names, value=baseline),
            gr.update(choices=board.metrics, value=board.metrics[0]),
            *versus,
            board.best.name if not board.best.imported else "",
            gr.update(choices=runs, value=runs[0] if runs else None),
            *exports,
        )

    @staticmethod
    def summary(result: sweep.SweepResult, board: leaderboard.Leaderboard, wall_s: float) -> str:
        """The sweep in a few lines; ``wall_s``: the whole action's wall time (reading, scoring, statistics,
        tables, charts and report files)."""
        best = board.best
        variants = [r for r in result.runs if not r.imported]
        lines = [f"**{len(variants)} variant(s)** × **{len(result.judged.queries)} queries** "
                 f"({result.judged.pairs:,} documents to rank) in {wall_s:.2f} s (the whole action): "
                 f"**{result.pairs_scored:,} pairs** scored in {result.seconds:.2f} s, {result.cache_hits:,} from the "
                 "cache · judged set: "
                 f"{html.escape(result.judged.source, quote=False)}",
                 f"Best by {board.metrics[0]}: **{html.escape(best.name, quote=False)}** "
                 f"({best.means[board.metrics[0]]:.4f}) · {len(board.query_ids)} queries measured"
                 + (f", {len(board.skipped)} without a document judged relevant left out" if board.skipped else "")
                 + f" · {board.test_description}, Holm-corrected: † = significantly different "
                   f"from the best at α = {board.alpha}"]
        if len(board.query_ids) < ADVISED_QUERIES:
            lines.append(f"⚠ Only {len(board.query_ids)} quer{'y' if len(board.query_ids) == 1 else 'ies'} measured: "
                         f"with fewer than {ADVISED_QUERIES} the intervals are too wide and the tests too weak to tell "
                         "variants apart, so this leaderboard cannot separate them (docs/tuning.md advises 20–30 "
                         "queries with a relevant document each).")
        lines += [f"ℹ {html.escape(note, quote=False)}" for note in result.notes]
        return "  \n".join(lines)

    @staticmethod
    def leaderboard_table(state: SweepState) -> pd.DataFrame:
        """The leaderboard for people, each run named by its preset or its instruction's text (in full on hover,
        with its model and max length)."""
        table = report.leaderboard_display(state.board)
        cells = []
        for row in state.board.rows:
            variant = state.variants.get(row.name)
            title = (f"{variant.resolved_instruction}\n{variant.model} · max length {variant.max_length:,}"
                     if variant else "an imported run")
            cells.append(hover(row.name + (" (imported)" if row.imported else ""), title))
        table["run"] = cells
        return table

    def _versus(self, state: SweepState, baseline, metric):
        board = state.board
        winner = board.best.name
        if baseline == winner:
            empty = pd.DataFrame(columns=["query", "winner", "difference"])
            return empty, None, gr.update(choices=[], value=None)
        frame = board.versus(winner, baseline, metric)
        texts = {q.query_id: q.query for q in state.result.judged.queries}
        # runs are named by their instructions' text: named in the label (text), not in the headers
        shown = pd.DataFrame({"query": [hover(texts[q], str(q)) for q in frame["query_id"]],
                              "winner": frame[winner].map(number), "baseline": frame[baseline].map(number),
                              "difference": frame["difference"].map(number)})
        label = (f"{metric} per query: winner {winner} against baseline {baseline} (click a row to open its query "
                 "in Rank & judge)")
        choices = [(shortened(texts[q], 80), str(q)) for q in frame["query_id"]]
        return (gr.update(value=shown, label=label), report.versus_figure(frame, winner, baseline, metric),
                gr.update(choices=choices, value=choices[0][1] if choices else None))

    @common.shows_errors
    def versus(self, state: SweepState | None, baseline, metric):
        """The winner against ``baseline`` per query on ``metric``, worst loss first."""
        if not state:
            raise gr.Error("Run a sweep first.")
        return self._versus(state, baseline, metric)

    @staticmethod
    def versus_query(state: SweepState | None, baseline, metric, row: int | None) -> str:
        """The query id of ``row`` of the per-query table (the winner against ``baseline`` on ``metric``)."""
        if not state:
            raise gr.Error("Run a sweep first.")
        ids = [] if baseline == state.board.best.name else list(
            state.board.versus(state.board.best.name, baseline, metric)["query_id"])
        if row is None or not 0 <= row < len(ids):
            raise gr.Error("Choose a query in the table.")
        return str(ids[row])

    def _exports(self, state: SweepState, baseline=None) -> tuple[str, str]:
        common.prune(self.inspector.export_dir)
        stem = self.inspector.export_dir / f"sweep-{uuid.uuid4().hex[:8]}"
        csv = report.leaderboard_csv(state.board, state.result, stem.with_suffix(".csv"))
        page = report.write_html(stem.with_suffix(".html"), state.result, state.board, baseline=baseline,
                                 calibration=state.calibration, calibrated_run=state.calibrated,
                                 threshold=state.threshold)
        return str(csv), str(page)

    def exports(self, state: SweepState | None, baseline):
        """The leaderboard CSV and the report for ``baseline`` (none before a sweep)."""
        return self._exports(state, baseline) if state else (None, None)

    # --- click-throughs, presets ---------------------------------------------------------------------
    def open_in_ab(self, state: SweepState | None, baseline, query_id, undo: replacing.Undo, *current):
        """A/B's inputs set to one judged query: the page's query and documents, side A the baseline, side B the
        winner; what they replace is kept for ``undo`` (``current``: its components' values), and a message says
        so."""
        if not state or not query_id:
            raise gr.Error("Run a sweep and choose a query first.")
        query = state.query(query_id)
        documents = "\n---\n".join(text for _, text in query.documents)
        sides = []
        for side, name in zip("AB", (baseline, state.board.best.name)):
            variant = state.variants.get(name)
            if variant is None:  # an imported run: its side keeps what it had
                gr.Info(common.message(f"{name!r} is an imported run, not an instruction: side {side} keeps its "
                                       "settings."))
                sides += current[len(sides) + 4:len(sides) + 7]
            else:
                sides += [variant.instruction, variant.model, variant.max_length]
        return undo.replace((query.query, documents, "dashes", None, *sides), current,
                            f"A/B compare now holds {shortened(query.query, 60)!r} with its {len(query.documents)} "
                            f"documents, side A {baseline!r} and side B {state.board.best.name!r}.")

    def open_in_rank(self, state: SweepState | None, query_id, judged: JudgedQueries, *current):
        """*Rank & judge* set to one judged query of the sweep: its query, documents (their text in the judged set)
        and the winner's instruction, as the judged-data workspace brings a query back (saying so, with Undo)."""
        if not state or not query_id:
            raise gr.Error("Run a sweep and choose a query first.")
        query = state.query(query_id)
        winner = state.variants.get(state.board.best.name)
        instruction = winner.resolved_instruction if winner else DEFAULT_INSTRUCTION
        return judged.bring_back(Stored(query.query, instruction, [text for _, text in query.documents]), *current)

    @common.shows_errors
    def save_winner(self, state: SweepState | None, name, request: gr.Request = None,
                    profile: gr.OAuthProfile | None = None):
        """Save the best run's instruction as one of the visitor's presets."""
        if not state:
            raise gr.Error("Run a sweep first.")
        best = state.board.best
        variant = state.variants.get(best.name)
        if variant is None:
            raise gr.Error(common.message(f"The best row, {best.name!r}, is an imported run: there is no "
                                          "instruction to save."))
        replaced = self.inspector.presets.save(name, variant.resolved_instruction,
                                               owner=self.inspector.visitors.owner(request, profile))
        gr.Info(common.message(f"Preset {' '.join(name.split())!r} {'updated' if replaced else 'saved'}."))
        return gr.update(value="")

    # --- calibration ---------------------------------------------------------------------------------
    @common.shows_errors
    def calibrate(self, state: SweepState | None, run_name, n_bins, method, target, goal, baseline):
        """Reliability, ECE, Brier (raw and fitted) and a threshold for the target, for one run."""
        if not state:
            raise gr.Error("Run a sweep first.")
        try:
            n_bins = int(n_bins)
        except (TypeError, ValueError):
            raise gr.Error(common.message(f"The number of bins must be a whole number, got {n_bins!r}."))
        board = state.board
        pairs = calibration.judged_pairs(state.result, run_name, board.relevant_from)
        found = calibration.calibrate(pairs, n_bins=n_bins, method=method)
        threshold = calibration.pick_threshold(pairs["score"], pairs["relevant"], target=target, goal=goal)
        state = replace(state, calibration=found, threshold=threshold, calibrated=run_name)
        lines = [f"**{len(pairs):,} judged pairs** of **{html.escape(run_name, quote=False)}** ({int(pairs['relevant'].sum())} "
                 f"relevant) · ECE **{found.ece:.4f}** · Brier **{found.brier:.4f}**"]
        if found.fit:
            lines.append(f"After the {found.fit.method} fit (slope {found.fit.slope:.4f}, offset "
                         f"{found.fit.offset:.4f}; in-sample): ECE **{found.calibrated_ece:.4f}** · Brier "
                         f"**{found.calibrated_brier:.4f}**. The calibrated score is shown beside the raw one "
                         "below; thresholds and the disagreement view use the raw score.")
        lines.append(html.escape(report.threshold_text(threshold), quote=False))
        value = threshold.threshold
        return (state, "  \n".join(lines), report.reliability_figure(found), self.pairs_table(state, found),
                # rounded down, so the pair the threshold was picked at stays at or above it
                math.floor(value * 1e4) / 1e4 if value is not None else None, *self._exports(state, baseline))

    @staticmethod
    def pairs_table(state: SweepState, found: calibration.Calibration) -> pd.DataFrame:
        """The calibrated run's judged pairs, best score first: query and document text (ids on hover), label,
        raw and calibrated score."""
        queries = {q.query_id: q for q in state.result.judged.queries}
        texts = {(q.query_id, doc_id): text for q in queries.values() for doc_id, text in q.documents}
        pairs = found.pairs.sort_values("score", ascending=False)
        scores = ["score"] + (["calibrated_score"] if found.fit else [])
        table = pd.DataFrame({
            "query": [hover(queries[q].query, q, 60) for q in pairs["query_id"]],
            "document": [hover(texts[(q, d)], f"{d}\n{texts[(q, d)]}", DOCUMENT_CHARS)
                         for q, d in zip(pairs["query_id"], pairs["doc_id"])],
            "label": pairs["label"].tolist()})
        for column in scores:
            table[column] = pairs[column].map(number).tolist()
        return table

    @staticmethod
    def use_threshold(value, current, undo: replacing.Undo):
        """The chosen threshold into *Rank & judge*'s disagreement view, saying so; ``undo`` puts ``current``
        back."""
        if value is None:
            raise gr.Error("Calibrate and pick a threshold first.")
        return undo.replace([value], [current], f"The disagreement threshold of Rank & judge is now {value:.4f} "
                                                f"(it was {float(current):.4f}).")


def build_tab(inspector: Inspector, *, settings: Fields, batch_size, threshold: gr.Slider, ab: replacing.Undo,
              judged: JudgedQueries, workspaces: gr.Tabs) -> None:
    """The "Tune & calibrate" workspace. ``settings``: the page's model inputs (``ModelInputs``); ``threshold``:
    the disagreement view's slider the calibration panel sets; ``ab``: the A/B inputs the click-through fills in
    (with their Undo); ``judged``: brings a query back into *Rank & judge* (in ``workspaces``)."""
    tab = SweepTab(inspector)
    default = inspector.holder.default
    with gr.Tab("Tune & calibrate", id="tune") as tab_component:
        state = gr.State(None)
        gr.Markdown(
            "Which instruction ranks best over **all** your judged queries, is the difference real, and where should "
            "the relevance cut-off be? Pick variants, a judged set and (optionally) a first-stage run such as BM25; "
            "pairs scored before come from the cache, so a stopped sweep resumes. Walk-through: docs/tuning.md.")
        source = gr.Radio(SOURCES, value="store", label="Judged queries")
        with gr.Group(visible=False) as table_group:
            table = gr.File(label="Pair table (query, document, label 0/1/2; optionally query_id, doc_id)",
                            file_types=TABLE_TYPES, type="filepath")
        with gr.Group(visible=False) as trec_group, gr.Row():
            topics = gr.File(label="Topics (qid<TAB>text, or JSONL)", type="filepath")
            qrels = gr.File(label="Qrels (qid 0 docid label)", type="filepath")
            corpus = gr.File(label="Documents (JSONL _id/title/text, or docid<TAB>text)", type="filepath")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chosen = gr.CheckboxGroup(list(inspector.initial_presets()), value=[common.DEFAULT_PRESET],
                                          label="Instruction presets to sweep", elem_id="rr-sweep-presets")
                pasted = gr.Textbox(label="More instructions, one per line (edited or pasted)", lines=3,
                                    max_lines=12, elem_id="rr-sweep-pasted")
            with gr.Column(scale=2):
                models = gr.Textbox(label="Models (comma-separated; empty = the settings panel's)",
                                    placeholder=default.model)
                max_lengths = gr.Textbox(label="Max lengths (comma-separated; empty = the settings panel's)",
                                         placeholder=str(default.max_length))
                baseline_file = gr.File(label="Baseline: a TREC run to compare with (optional)", type="filepath")
                baseline_name = gr.Textbox("BM25", label="Baseline name")
        with gr.Row():
            k = gr.Number(DEFAULT_K, label="k for nDCG@k and P@k", precision=0, minimum=1)
            relevant_from = gr.Radio(common.RELEVANCE_CHOICES, value=1, label="Relevant for MRR, MAP and P@k")
            stat_test = gr.Radio(TESTS, value="student", label="Significance test (best vs each other)")
        run_button = gr.Button("Run the sweep", variant="primary")
        summary = gr.Markdown(elem_classes="rr-sweep-summary")
        board_table = gr.Dataframe(label="Leaderboard (hover a run for its instruction)", interactive=False,
                                   wrap=True, datatype="html", elem_classes="rr-sweep-leaderboard")
        board_chart = gr.Plot(show_label=False, elem_classes="rr-sweep-chart")
        with gr.Row():
            csv_download = gr.DownloadButton("Download the leaderboard (CSV)", value=None, size="sm")
            html_download = gr.DownloadButton("Download the report (HTML)", value=None, size="sm")
        with gr.Row(equal_height=True):
            winner_name = gr.Textbox(label="Save the winner's instruction as a preset named", scale=3)
            save_button = gr.Button("💾 Save the winner as a preset", size="sm", scale=1)

        gr.Markdown("#### The winner against a baseline, per query (worst loss first)")
        with gr.Row():
            baseline = gr.Dropdown([], label="Baseline", allow_custom_value=True)
            metric = gr.Dropdown(metric_names(DEFAULT_K), label="Metric", allow_custom_value=True)
        versus_table = gr.Dataframe(interactive=False, wrap=True, max_height=360, datatype="html",
                                    elem_classes="rr-sweep-versus",
                                    label="Per query (click a row to open its query in Rank & judge)")
        versus_chart = gr.Plot(show_label=False)
        with gr.Row(equal_height=True):
            query_choice = gr.Dropdown([], label="Query", allow_custom_value=True, scale=3,
                                       elem_id="rr-sweep-query")
            rank_button = gr.Button("Open in Rank & judge ↗", size="sm", scale=1)
            open_button = gr.Button("Open in A/B compare ↗", size="sm", scale=1)

        with gr.Accordion("Calibration & threshold", open=True, elem_id="rr-sweep-calibration"):
            with gr.Row():
                calibrated_run = gr.Dropdown([], label="Run", allow_custom_value=True)
                n_bins = gr.Number(10, label="Bins", precision=0, minimum=2, maximum=50)
                fit = gr.Radio(FITS, value="none", label="Fit on the log-odds")
            with gr.Row():
                target = gr.Radio(list(calibration.TARGETS), value="precision", label="Target")
                goal = gr.Slider(0.05, 1, value=0.9, step=0.01, label="Target value")
                calibrate_button = gr.Button("Calibrate and pick the threshold", variant="secondary")
            calibration_summary = gr.Markdown(elem_classes="rr-sweep-calibration-summary")
            reliability_chart = gr.Plot(show_label=False, elem_classes="rr-sweep-reliability")
            with gr.Row(equal_height=True):
                chosen_threshold = gr.Number(None, label="Chosen threshold", precision=4, minimum=0, maximum=1)
                use_threshold = gr.Button("Use it in the disagreement view (Rank & judge)", size="sm")
                threshold_undo = replacing.Undo([threshold], "↶ Undo: put the disagreement threshold back",
                                                elem_id="rr-undo-threshold", what="disagreement threshold")
            pairs_table = gr.Dataframe(label="Judged pairs: raw and calibrated score (hover for ids)",
                                       interactive=False, max_height=300, datatype="html",
                                       elem_classes="rr-sweep-pairs")

    source.change(lambda v: (gr.update(visible=v == "table"), gr.update(visible=v == "trec")), source,
                  [table_group, trec_group], queue=False, api_name=False)
    # presets saved since the page loaded (also "save the winner") appear when the tab is opened
    tab_component.select(inspector.preset_choices, None, chosen, queue=False, api_name=False)
    inputs = Fields(SweepInputs, source=source, table=table, topics=topics, qrels=qrels, corpus=corpus, chosen=chosen,
                    pasted=pasted, models=models, max_lengths=max_lengths, baseline_file=baseline_file,
                    baseline_name=baseline_name, k=k, relevant_from=relevant_from, stat_test=stat_test)
    run = bind(tab.run, inputs, settings, batch_size)
    run_button.click(
        run, run.inputs,
        [state, summary, board_table, board_chart, baseline, metric, versus_table, versus_chart, query_choice,
         winner_name, calibrated_run, csv_download, html_download],
        api_name="sweep", concurrency_id="model", show_progress_on=[board_table])
    for control in (baseline, metric):
        control.input(tab.versus, [state, baseline, metric], [versus_table, versus_chart, query_choice],
                      api_name=False)
    baseline.input(tab.exports, [state, baseline], [csv_download, html_download], api_name=False)
    save_button.click(tab.save_winner, [state, winner_name], winner_name, api_name="sweep_save_winner")

    def open_in_ab(state, baseline, query_id, query, pasted, mode, upload, instruction_a, model_a, max_length_a,
                   instruction_b, model_b, max_length_b):
        return tab.open_in_ab(state, baseline, query_id, ab, query, pasted, mode, upload, instruction_a, model_a,
                              max_length_a, instruction_b, model_b, max_length_b)

    def open_in_rank(state, query_id, query, instruction, pasted, mode):
        return tab.open_in_rank(state, query_id, judged, query, instruction, pasted, mode)

    def open_row(state, baseline, metric, query, instruction, pasted, mode, evt: gr.SelectData):
        """A click on a row of the per-query table: that query in Rank & judge."""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else None
        return tab.open_in_rank(state, tab.versus_query(state, baseline, metric, row), judged, query, instruction,
                                pasted, mode)

    open_button.click(open_in_ab, [state, baseline, query_choice, *ab.components], ab.outputs,
                      api_name="sweep_open_in_ab").success(None, js=SWITCH_TO_AB)
    rank_button.click(open_in_rank, [state, query_choice, *judged.undo.components],
                      [*judged.undo.outputs, workspaces], api_name="sweep_open_in_rank")
    versus_table.select(open_row, [state, baseline, metric, *judged.undo.components],
                        [*judged.undo.outputs, workspaces], api_name=False)
    calibrate_button.click(tab.calibrate, [state, calibrated_run, n_bins, fit, target, goal, baseline],
                           [state, calibration_summary, reliability_chart, pairs_table, chosen_threshold,
                            csv_download, html_download], api_name="sweep_calibrate")

    def use(value, current):
        return tab.use_threshold(value, current, threshold_undo)

    use_threshold.click(use, [chosen_threshold, threshold], threshold_undo.outputs, api_name="sweep_use_threshold",
                        concurrency_limit=None)
    threshold_undo.wire()
