"""Judging the ranked table in the inspector: one-click and keyboard labels, notes, disagreements, export/import.

The table's script (``view/judging_table.js``) changes a row and moves the focus as a key goes down, then sends
``{action, doc, label, query, seq}`` through the table component's own ``click`` event (Gradio custom HTML
``trigger``), one judgement at a time and in order. A judgement names its document by the hash of its text and
the ranking by its query, never by row position; it is written to SQLite before the handler answers in the
table's ``ack`` prop (what the store now holds, or why it failed), so a killed app loses nothing. The panel under
the table edits the note or label of one document and is also the API (``/save_judgement``,
``/delete_judgement``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from reranker.files import documents, judgement_files
from reranker.ranking import inspection
from reranker.view import results_table
from reranker.ui import common
from reranker.ui.common import Fields, Ranking, ViewInputs, bind
from reranker.ui.visitors import Visitors
from reranker.storage.judgements import Annotation, AnnotationStore, document_hash
from reranker.ranking.disagreements import disagreements, DEFAULT_THRESHOLD, Disagreement
from reranker.storage.labels import LABELS
from reranker.errors import InputError, RerankerError

LABEL_CHOICES = [(f"{name.capitalize()} ({label})", label) for label, name in LABELS.items()]
IMPORT_TYPES = [*documents.TABLE_SUFFIXES, *judgement_files.QRELS_SUFFIXES]
EXPORT_SCOPES = {"query": "The current ranking's", "all": "Everything"}  # no "query": the page's box is found by it
EVERYONE = ""  # the person filter's value for "my own judgements"

VIEW = Path(__file__).parents[1] / "view"
TABLE_JS = (VIEW / "judging_table.js").read_text(encoding="utf-8")  # judging at typing speed (keys, queue, undo)
TABLE_CSS = (VIEW / "judging_table.css").read_text(encoding="utf-8")  # scoped to the table component


@dataclass
class Controls:
    """The threshold, the disagreements-only switch and the count line, shown above the table."""

    threshold: gr.Slider
    only: gr.Checkbox
    count: gr.HTML
    person: gr.Dropdown  # a team server's "whose judgements" filter (hidden elsewhere)
    shown: gr.State  # the person chosen there ("" = the visitor's own)


@dataclass
class Panel:
    """Editing one judgement (beside the table), and exporting / importing judgements (judged-data workspace)."""

    row: gr.Dropdown
    label: gr.Radio
    note: gr.Textbox
    save: gr.Button
    delete: gr.Button
    scope: gr.Radio
    export: gr.Button
    files: gr.File
    upload: gr.File
    companion: gr.File
    overwrite: gr.Checkbox
    run_import: gr.Button
    report: gr.Textbox


def _result(ranking: Ranking | None) -> inspection.RunResult | None:
    return ranking.result if ranking else None


class Annotator:
    """Handlers for judging: bound to one process's annotation store; each visitor sees and changes only their
    own judgements (on a team server they may also look at another person's)."""

    def __init__(self, store: AnnotationStore, export_dir: Path, visitors: Visitors | None = None):
        self.store = store
        self.export_dir = export_dir
        self.visitors = visitors or Visitors()

    def _shown(self, person, request, profile) -> str:
        """Whose judgements the table shows: the visitor's, or on a team server the person they chose."""
        return self.visitors.resolve(request, profile).shown(person)

    def _whose(self, person, request, profile) -> tuple[str, str | None]:
        """Whose judgements the table shows, and their name when they are not the visitor's own (None)."""
        visitor = self.visitors.resolve(request, profile)
        return visitor.shown(person), visitor.other(person)

    def _writer(self, person, request, profile) -> str:
        """The visitor, who may change only their own judgements."""
        return self.visitors.resolve(request, profile).writer(person)

    def people(self, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """The person filter's choices: everyone with judgements here (team servers only)."""
        if not self.visitors.team:
            return gr.update(visible=False)
        me = self.visitors.owner(request, profile)
        others = [o for o in self.store.owners() if o and o != me]
        return gr.update(choices=[(f"Mine ({me})", EVERYONE), *[(o, o) for o in others]], value=EVERYONE,
                         visible=True)

    # --- the table --------------------------------------------------------------------------------
    def judged(self, result: inspection.RunResult, threshold: float, owner: str = "") -> tuple[
            dict[str, Annotation], dict[str, Disagreement]]:
        """``owner``'s judgements of this query by document hash, and the run's disagreements at ``threshold``."""
        judgements = {a.doc_hash: a for a in self.store.for_query(result.query, owner=owner)}
        found = disagreements(result.rows, {k: a.label for k, a in judgements.items()}, threshold)
        return judgements, {d.doc_hash: d for d in found}

    def render(self, result: inspection.RunResult, rows: list[inspection.RankedRow], threshold=DEFAULT_THRESHOLD,
               only: bool = False, owner: str = "", other: str | None = None) -> str:
        """The ranked table for ``rows`` with ``owner``'s judgements; only the disagreeing rows when ``only``;
        ``other``: the person whose judgements they are when not the visitor's own (the table names them)."""
        return self._render(result, rows, threshold, only, self.judged(result, threshold, owner), other)

    def _render(self, result: inspection.RunResult, rows: list[inspection.RankedRow], threshold, only: bool,
                judged: tuple[dict, dict], other: str | None = None) -> str:
        judgements, disagreeing = judged
        empty = None
        if only:
            rows = [r for r in rows if document_hash(r.text) in disagreeing]
            empty = (f"No disagreements at threshold {float(threshold):.2f} among the documents shown "
                     f"({_judged_count(result, judgements)} of {len(result.rows)} judged).")
        return results_table.render(rows, result.query, max_length=result.max_length, total=len(result.rows),
                                    judgements=judgements, disagreeing=disagreeing, empty_message=empty,
                                    explain=True, owner=other, instruction=result.instruction,
                                    run=run_key(result))

    def view_changed(self, ranking: Ranking | None, view: ViewInputs,
                     person=EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Threshold, disagreements-only or the person changed: the table and the count again."""
        return self._table_and_count(ranking, view, *self._whose(person, request, profile))

    @common.shows_errors
    def _table_and_count(self, ranking: Ranking | None, view: ViewInputs, owner: str,
                         other: str | None = None) -> tuple[str, str]:
        """The table for the filters in ``view`` and the count line, from one read of ``owner``'s judgements
        (``other``: their name when they are not the visitor's own)."""
        result = _result(ranking)
        if result is None:
            return results_table.render([], "", max_length=0), self.count(ranking, view.threshold)
        rows = view.rows(result)
        try:
            judged = self.judged(result, view.threshold, owner)
        except ValueError as exc:
            raise gr.Error(common.message(f"Check the threshold: {exc}"))
        return (self._render(result, rows, view.threshold, bool(view.only), judged, other),
                results_table.count_line(result.rows, view.threshold, judged, other))

    @common.shows_errors
    def count(self, ranking: Ranking | None, threshold, owner: str = "") -> str:
        """One line: disagreements at the threshold, and how much of this ranking ``owner`` judged."""
        result = _result(ranking)
        if result is None:
            return results_table.count_line([], threshold, ({}, {}))
        return results_table.count_line(result.rows, threshold, self.judged(result, threshold, owner))

    # --- judging ----------------------------------------------------------------------------------
    def _row(self, result: inspection.RunResult, rank) -> inspection.RankedRow:
        try:
            rank = int(rank)
        except (TypeError, ValueError):
            raise gr.Error("Choose the document to judge first.")
        row = next((r for r in result.rows if r.rank == rank), None)
        if row is None:
            raise gr.Error(f"There is no document ranked {rank} in the last run.")
        return row

    @common.shows_errors(title='Please check the judgement')
    def _save(self, result: inspection.RunResult, row: inspection.RankedRow, label, note: str,
              owner: str) -> Annotation:
        return self.store.save(result.query, row.text, label, instruction=result.instruction, model=result.model,
                               score=row.score, note=note, owner=owner)

    def _after(self, ranking: Ranking, rank, view: ViewInputs, owner: str) -> tuple:
        """Outputs after a change: table, count, and the panel showing document ``rank``."""
        row = self._row(ranking.result, rank)
        return (*self._table_and_count(ranking, view, owner), row.rank, *self._stored(ranking.result, row.rank, owner))

    def judge(self, ranking: Ranking | None, view: ViewInputs, person=EVERYONE, evt: gr.EventData = None,
              request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """One judgement from the table's script: ``{action: label | clear | select, doc, label, query, seq,
        refresh}``. Answers in the table's ``ack`` prop with what the store now holds for the document (or why
        nothing was stored); the whole table again only with ``refresh`` (the script's queue is empty)."""
        data = getattr(evt, "_data", None) or {}
        ack = {"seq": data.get("seq"), "doc": data.get("doc"), "ok": False, "label": None}
        try:
            return self._judge(ranking, view, data, ack, person, request, profile)
        except gr.Error as exc:
            ack["error"] = exc.message
        except RerankerError as exc:
            ack["error"] = str(exc)
        ack["label"] = self._stored_label(ranking, ack["doc"], self._shown(person, request, profile))
        gr.Warning(common.message(f"Judgement not saved: {ack['error']}"))
        return gr.update(ack=ack), gr.skip(), gr.skip(), gr.skip(), gr.skip()

    def _stored_label(self, ranking: Ranking | None, doc, owner: str) -> int | None:
        """What the store holds for document ``doc`` of the current ranking (the row shows it after a failure)."""
        result = _result(ranking)
        try:
            stored = self.store.get(result.query, doc, owner=owner) if result and isinstance(doc, str) else None
        except RerankerError:
            return None
        return stored.label if stored else None

    def _judge(self, ranking: Ranking | None, view: ViewInputs, data: dict, ack: dict, person, request, profile):
        result = _result(ranking)
        if result is None:
            raise InputError("Run a query first, then judge the ranked documents.")
        if data.get("query") != results_table.query_key(result.query):
            raise InputError("This table is no longer the ranking on the server (a newer run replaced it): judge "
                             "the documents of the ranking shown now.")
        doc = data.get("doc")
        row = next((r for r in result.rows if document_hash(r.text) == doc), None)
        if row is None:
            raise InputError("That document is not in the last run.")
        action = data.get("action")
        other = None
        if action == "select":
            owner, other = self._whose(person, request, profile)
        else:
            owner = self._writer(person, request, profile)
            if action == "label":
                label = data.get("label")
                if isinstance(label, bool) or label not in LABELS:  # only a key or button the user pressed
                    raise InputError(f"A judgement is one of {sorted(LABELS)}, got {label!r}.")
                stored = self.store.get(result.query, doc, owner=owner)
                self._save(result, row, label, stored.note if stored else "", owner)
            elif action == "clear":
                self.store.delete(result.query, doc, owner=owner)
            else:
                raise InputError(f"Unknown judgement action {action!r}.")
        stored = self.store.get(result.query, doc, owner=owner)
        ack.update(ok=True, label=stored.label if stored else None)
        if data.get("refresh"):
            table, count = self._table_and_count(ranking, view, owner, other)
            update = gr.update(ack=ack, value=table)
        else:
            update, count = gr.update(ack=ack), self.count(ranking, view.threshold, owner)
        return update, count, row.rank, *self._stored(result, row.rank, owner)

    def save(self, ranking: Ranking | None, rank, label, note, view: ViewInputs,
             person=EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Save the panel's label and note for one document (edit; the API's /save_judgement)."""
        result = _result(ranking)
        if result is None:
            raise gr.Error("Run a query first, then judge the ranked documents.")
        owner = self._writer(person, request, profile)
        row = self._row(result, rank)
        if label in (None, ""):
            stored = self.store.get(result.query, document_hash(row.text), owner=owner)
            if stored is None:
                raise gr.Error("Choose relevant, partly relevant or not relevant before saving.")
            label = stored.label
        self._save(result, row, label, note or "", owner)
        gr.Info(common.message(f"Judgement of {row.id} saved."))
        return self._after(ranking, row.rank, view, owner)

    def delete(self, ranking: Ranking | None, rank, view: ViewInputs,
               person=EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Delete the visitor's judgement of one document (the API's /delete_judgement)."""
        result = _result(ranking)
        if result is None:
            raise gr.Error("Run a query first.")
        owner = self._writer(person, request, profile)
        row = self._row(result, rank)
        if not self.store.delete(result.query, document_hash(row.text), owner=owner):
            raise gr.Error(common.message(f"{row.id} has no judgement to delete."))
        gr.Info(common.message(f"Judgement of {row.id} deleted."))
        return self._after(ranking, row.rank, view, owner)

    def pick(self, ranking: Ranking | None, rank,
             person=EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """The stored label and note of the document chosen in the panel."""
        return self._stored(_result(ranking), rank, self._shown(person, request, profile))

    def _stored(self, result, rank, owner: str):
        if result is None or rank is None:
            return None, ""
        stored = self.store.get(result.query, document_hash(self._row(result, rank).text), owner=owner)
        return (stored.label, stored.note) if stored else (None, "")

    def new_run(self, ranking: Ranking | None, threshold,
                person=EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """After a run: the count, and the panel's document choices."""
        result = _result(ranking)
        owner = self._shown(person, request, profile)
        if result is None:
            return self.count(ranking, threshold), gr.update(choices=[], value=None), None, ""
        choices = [(f"#{r.rank} · {r.id} · {r.score:.3f}", r.rank) for r in result.rows]
        first = result.rows[0].rank if result.rows else None
        return (self.count(ranking, threshold, owner), gr.update(choices=choices, value=first),
                *self._stored(result, first, owner))

    # --- export / import --------------------------------------------------------------------------
    @common.shows_errors
    def export(self, scope, ranking: Ranking | None,
               person=EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> list[str]:
        """CSV, JSONL and qrels files of this query's judgements or of all of them (the visitor's own, or on a
        team server the chosen person's)."""
        result = _result(ranking)
        owner = self._shown(person, request, profile)
        if scope == "query":
            if result is None:
                raise gr.Error("Run a query first, or export all queries.")
            chosen = self.store.for_query(result.query, owner=owner)
        else:
            chosen = self.store.all(owner=owner)
        if not chosen:
            raise gr.Error("There are no judgements to export yet.")
        common.prune(self.export_dir)
        stem = self.export_dir / f"judgements-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        return [str(write(chosen, stem.with_suffix(f".{fmt}"))) for fmt, write in judgement_files.EXPORTERS.items()]

    @common.shows_errors(title='The file cannot be imported')
    def import_file(self, upload, companion, overwrite, ranking: Ranking | None, view: ViewInputs,
                    person=EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Pre-fill the visitor's judgements from a file; the report lists every row that was not imported."""
        owner = self._writer(person, request, profile)
        path, companion = common.upload_path(upload), common.upload_path(companion)
        if not path:
            raise gr.Error("Choose a judgements file to import (CSV/JSONL with a label column, or TREC qrels).")
        result = _result(ranking)
        report = judgement_files.import_judgements(
            self.store, path, overwrite=bool(overwrite), companion=companion,
            current_query=result.query if result else None,
            current_documents=[(r.id, r.text) for r in result.rows] if result else (), owner=owner)
        return report.summary(), *self._table_and_count(ranking, view, owner)


def run_key(result: inspection.RunResult) -> str:
    """What tells this run from the session's others (the table's ``data-run``): a new run starts the
    one-document-at-a-time view again at its first document."""
    return f"{result.timestamp}-{id(result):x}"


def _judged_count(result: inspection.RunResult, judgements: dict[str, Annotation]) -> int:
    return len({document_hash(r.text) for r in result.rows} & judgements.keys())


# --- layout and wiring ------------------------------------------------------------------------------

def build_controls(annotator: Annotator) -> Controls:
    """Threshold slider, disagreements-only switch and count; place right above the ranked table."""
    with gr.Row(equal_height=True, elem_classes="rr-annotate-bar"):
        threshold = gr.Slider(0, 1, value=DEFAULT_THRESHOLD, step=0.01, label="Disagreement threshold", scale=2,
                              elem_id="rr-threshold",
                              info="The model says “relevant” at a score ≥ this")
        only = gr.Checkbox(False, label="Disagreements only", scale=1,
                           info="Judged relevant but scored low, or judged not relevant but scored high")
        count = gr.HTML(annotator.count(None, DEFAULT_THRESHOLD), elem_id="rr-judgement-count", scale=3)
        person = gr.Dropdown([], label="Whose judgements", visible=annotator.visitors.team, scale=1,
                             info="Yours, or another person's (to read; you judge as yourself)")
    return Controls(threshold, only, count, person, gr.State(EVERYONE))


def build_editor() -> tuple:
    """The judgement editor of one document (its label and note); place beside the ranked table."""
    with gr.Accordion("Judgement and note of one document", open=False, elem_id="rr-judgements"):
        # custom values: API callers name a rank without having seen the choices
        row = gr.Dropdown([], label="Document", value=None, allow_custom_value=True)
        label = gr.Radio(LABEL_CHOICES, label="Judgement", value=None)
        note = gr.Textbox(label="Note (optional)", lines=2, max_lines=6, elem_id="rr-judgement-note",
                          placeholder="Why is it (not) relevant? Saved with the judgement.")
        with gr.Row():
            save = gr.Button("💾 Save judgement", size="sm", variant="primary")
            delete = gr.Button("🗑 Delete judgement", size="sm")
    return row, label, note, save, delete


def build_transfer() -> tuple:
    """Export and import of judgements; place in the judged-data workspace."""
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("**Export** judgements as CSV, JSONL and TREC qrels (ids `q-…` / `d-…`; the CSV and "
                        "JSONL map them to the texts).")
            scope = gr.Radio([(label, key) for key, label in EXPORT_SCOPES.items()], value="query",
                             label="Which judgements")
            export = gr.Button("Export judgements", size="sm")
            files = gr.File(label="Judgement files", file_count="multiple", interactive=False)
        with gr.Column():
            gr.Markdown("**Import** judgements from a CSV / JSONL / TSV with a label column (0, 1, 2) or TREC "
                        "qrels; ids resolve against the documents file, else the current ranking.")
            upload = gr.File(label="Judgements file", file_types=IMPORT_TYPES, type="filepath")
            companion = gr.File(label="Documents / id mapping file (optional)",
                                file_types=list(documents.TABLE_SUFFIXES), type="filepath")
            overwrite = gr.Checkbox(False, label="Overwrite stored judgements that have a different label")
            run_import = gr.Button("Import judgements", size="sm")
    report = gr.Textbox(label="Import report", lines=4, max_lines=20, interactive=False)
    return scope, export, files, upload, companion, overwrite, run_import, report


def wire(annotator: Annotator, controls: Controls, panel: Panel, *, demo: gr.Blocks, table: gr.HTML,
         result_state: gr.State, view: Fields) -> None:
    """Connect the table's judgement events, the controls and the panel; ``view`` is the table's ``ViewInputs``
    (its filters and the controls' threshold and switch). Every handler also gets whose judgements are shown."""
    after = [table, controls.count, panel.row, panel.label, panel.note]
    judge = bind(annotator.judge, result_state, view, controls.shown)
    # "multiple": quick successive clicks are each saved, in order (one queue for judging)
    table.click(judge, judge.inputs, after, api_name=False, trigger_mode="multiple", concurrency_id="judge",
                show_progress="hidden")
    save = bind(annotator.save, result_state, panel.row, panel.label, panel.note, view, controls.shown)
    panel.save.click(save, save.inputs, after, api_name="save_judgement", concurrency_id="judge")
    delete = bind(annotator.delete, result_state, panel.row, view, controls.shown)
    panel.delete.click(delete, delete.inputs, after, api_name="delete_judgement", concurrency_id="judge")
    panel.row.input(annotator.pick, [result_state, panel.row, controls.shown], [panel.label, panel.note],
                    api_name=False, queue=False)
    result_state.change(annotator.new_run, [result_state, controls.threshold, controls.shown],
                        [controls.count, panel.row, panel.label, panel.note], api_name=False, queue=False)
    view_changed = bind(annotator.view_changed, result_state, view, controls.shown)
    if annotator.visitors.team:
        demo.load(annotator.people, None, controls.person, api_name=False, queue=False)
        controls.person.focus(annotator.people, None, controls.person, api_name=False, queue=False)
        controls.person.input(lambda person: person or EVERYONE, controls.person, controls.shown, api_name=False,
                              queue=False).then(view_changed, view_changed.inputs, [table, controls.count],
                                                api_name=False, show_progress="hidden")
    for control in (controls.threshold, controls.only):
        control.change(view_changed, view_changed.inputs, [table, controls.count], api_name=False,
                       show_progress="hidden", concurrency_limit=None)
    panel.export.click(annotator.export, [panel.scope, result_state, controls.shown], panel.files,
                       api_name="export_judgements")
    import_file = bind(annotator.import_file, panel.upload, panel.companion, panel.overwrite, result_state, view,
                       controls.shown)
    panel.run_import.click(import_file, import_file.inputs, [panel.report, table, controls.count],
                           api_name="import_judgements", concurrency_id="judge")
