"""The ranked-table handlers of the inspector page, bound to one process's models, presets and judgements."""

from __future__ import annotations

import html
import logging
import tempfile
import uuid
from pathlib import Path

import gradio as gr

from reranker.errors import InputError, RerankerError
from reranker.files import documents
from reranker.ranking import export, inspection
from reranker.scoring.model_holder import ModelHolder, ModelSettings
from reranker.storage.judgements import DEFAULT_THRESHOLD, AnnotationStore
from reranker.storage.presets import PresetStore
from reranker.ui import common, judging_tab
from reranker.ui.visitors import Visitors
from reranker.view import charts, prompt_view, results_table

log = logging.getLogger(__name__)


class Inspector:
    """Handlers bound to one process's models and preset store, and to how visitors are told apart."""

    def __init__(self, holder: ModelHolder, presets: PresetStore, *, max_documents: int,
                 annotations: AnnotationStore, visitors: Visitors | None = None):
        self.holder = holder
        self.presets = presets
        self.max_documents = max_documents
        self.visitors = visitors or Visitors()
        self.export_dir = Path(tempfile.mkdtemp(prefix="reranker-exports-"))
        self.annotator = judging_tab.Annotator(annotations, self.export_dir, self.visitors)

    # --- documents -------------------------------------------------------------------------------
    def collect(self, pasted, mode, upload, text_column, id_column) -> documents.Collection:
        return documents.collect(pasted, mode, common.upload_path(upload), text_column or None, common.id_column_choice(id_column),
                                 max_documents=self.max_documents)

    def count(self, pasted, mode, upload, text_column, id_column) -> str:
        """The live count under the document inputs (problems are shown in it, not raised)."""
        try:
            found = self.collect(pasted, mode, upload, text_column, id_column)
        except RerankerError as exc:
            return f'<span class="rr-error">⚠ {html.escape(str(exc))}</span>'
        notes = "".join(f"<br><small>ℹ {html.escape(n)}</small>" for n in found.notes)
        summary = html.escape(found.summary())
        return f"<b>{summary}</b>{notes}" if found.documents else summary

    def inspect_upload(self, upload):
        """Column pickers and a preview for a table upload; hidden for text files."""
        hidden = gr.update(visible=False, value=None, choices=[])
        path = common.upload_path(upload)
        if not path or Path(path).suffix.lower() not in documents.TABLE_SUFFIXES:
            return hidden, hidden, gr.update(visible=False, value=None)
        try:
            frame, _ = documents.read_table(path)
        except RerankerError as exc:
            gr.Warning(common.message(str(exc)))
            return hidden, hidden, gr.update(visible=False, value=None)
        text, ident = documents.guess_columns(frame)
        columns = list(frame.columns)
        return (
            gr.update(choices=columns, value=text, visible=True),
            gr.update(choices=[common.NO_ID, *columns], value=ident or common.NO_ID, visible=True),
            gr.update(value=frame.head(5).astype(str), visible=True),
        )

    # --- models ----------------------------------------------------------------------------------
    def status(self, model, backend, max_length) -> str:
        """One line: which model, backend, device, whether it is loaded, cache hits."""
        try:
            settings = common.model_settings(model, backend, max_length)
        except gr.Error as exc:
            return f'<span class="rr-error">⚠ {html.escape(exc.message)}</span>'
        state, reranker, error = self.holder.state(settings)
        name = html.escape(settings.model_id)
        if state == "ready":
            info = reranker.info()
            return (f"🟢 <b>{name}</b> loaded · backend <b>{info['backend']}</b> "
                    f"on <b>{html.escape(info['device'])}</b>"
                    f" · max length {info['max_length']:,} · {info['pairs']:,} pairs scored, "
                    f"{info['cache_hits']:,} from the cache")
        if state == "loading":
            return (f"⏳ Loading <b>{name}</b> ({html.escape(settings.backend)} backend): "
                    "the first load can take a few minutes…")
        if state == "failed":
            return f'<span class="rr-error">⚠ {name} could not be loaded: {html.escape(error)}</span>'
        return f"⚪ <b>{name}</b> is not loaded yet; it loads on the first run (or press Load)."

    def load(self, model, backend, max_length, progress=gr.Progress()):
        if self.visitors.public:
            raise gr.Error("On this public demo the operator chooses which models are loaded; pick one of the "
                           "offered models and rank: it loads on the first run.")
        settings = common.model_settings(model, backend, max_length)
        progress(0, desc=f"Loading {settings.model_id}…")
        try:
            self.holder.get(settings)
        except RerankerError as exc:
            raise common.error(exc)
        return (self.status(model, backend, max_length),) * 2

    def poll_status(self, model, backend, max_length):
        """Status line for the timer; the timer stops once nothing is loading."""
        text = self.status(model, backend, max_length)
        return text, text, gr.Timer(active=text.startswith("⏳"))

    # --- ranking ---------------------------------------------------------------------------------
    def check(self, query, pasted, mode, upload, text_column, id_column, model, backend, max_length):
        """Refuse a run early (a message, no output touched) when the inputs cannot be ranked."""
        settings = common.model_settings(model, backend, max_length)
        try:
            self.holder.allow(settings)
            self._inputs(query, pasted, mode, upload, text_column, id_column)
        except RerankerError as exc:
            raise common.error(exc)

    def _inputs(self, query, pasted, mode, upload, text_column, id_column) -> documents.Collection:
        found = self.collect(pasted, mode, upload, text_column, id_column)
        if not (query or "").strip():
            raise InputError("The query is empty: type what you are searching for.")
        if not found.documents:
            raise InputError("There are no documents to rank: paste some or upload a file.")
        return found

    def model_choices(self) -> list[str]:
        """The model dropdowns' choices: the models the operator offers (``--models``)."""
        return list(self.holder.models)

    def _reranker(self, settings: ModelSettings, progress, loading: str):
        """The model for ``settings``; ``loading`` is shown while its first use loads it."""
        if self.holder.state(settings)[0] != "ready":
            progress(0, desc=loading)
        return self.holder.get(settings)

    def run(self, query, instruction, pasted, mode, upload, text_column, id_column, model, backend, max_length,
            batch_size, sort, min_score, min_confidence, top_k, threshold=DEFAULT_THRESHOLD, only=False,
            person=judging_tab.EVERYONE, progress=gr.Progress(), request: gr.Request = None,
            profile: gr.OAuthProfile | None = None):
        owner = self.visitors.owner(request, profile)
        with self.visitors.run(owner):
            return self._run(query, instruction, pasted, mode, upload, text_column, id_column, model, backend,
                             max_length, batch_size, (sort, min_score, min_confidence, top_k, threshold, only),
                             self.annotator._shown(person, request, profile), progress)

    def _run(self, query, instruction, pasted, mode, upload, text_column, id_column, model, backend, max_length,
             batch_size, view: tuple, owner: str, progress):
        settings = common.model_settings(model, backend, max_length)
        try:
            found = self._inputs(query, pasted, mode, upload, text_column, id_column)
            reranker = self._reranker(settings, progress, f"Loading {settings.model_id} (first run only)…")
            progress((0, len(found.documents)), desc="Scoring", unit="documents")
            result = inspection.run(
                reranker, query, instruction, found, batch_size=int(batch_size or 1),
                progress=lambda done, total: progress((done, total), desc="Scoring", unit="documents"),
            )
        except RerankerError as exc:
            raise common.error(exc)
        for note in result.notes:
            gr.Info(common.message(note))
        state = {"result": result, "settings": settings}
        return (state, *self._view(state, *view, owner),
                self.summary(result),
                *(self.status(model, backend, max_length),) * 2)

    @staticmethod
    def summary(result: inspection.RunResult) -> str:
        rows = result.rows
        relevant = sum(r.score >= 0.5 for r in rows)
        cut = sum(r.truncated for r in rows)
        return (
            f"**{len(rows)} documents** ranked in {result.seconds:.2f} s · **{relevant}** scored ≥ 0.5 · "
            f"{result.cache_hits} from the cache · {cut} truncated · `{result.model}` on {result.backend} "
            f"({result.device}), max length {result.max_length:,}"
        )

    def refresh(self, state, sort, min_score, min_confidence, top_k, threshold=DEFAULT_THRESHOLD, only=False,
                person=judging_tab.EVERYONE, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Table (with judgements), chart, row choices and export files for the current filters (no model call)."""
        owner = self.annotator._shown(person, request, profile)
        return self._view(state, sort, min_score, min_confidence, top_k, threshold, only, owner)

    def _view(self, state, sort, min_score, min_confidence, top_k, threshold, only, owner: str):
        if not state:
            empty = results_table.render([], "", max_length=0)
            return empty, None, gr.update(choices=[], value=None), None, None
        result: inspection.RunResult = state["result"]
        try:
            rows = inspection.view(result.rows, sort=sort, min_score=float(min_score or 0),
                                   min_confidence=float(min_confidence or 0), top_k=int(top_k) if top_k else None)
        except (RerankerError, ValueError) as exc:
            raise gr.Error(common.message(f"Check the filters: {exc}"))
        try:
            table = self.annotator.render(result, rows, threshold, bool(only), owner)
        except RerankerError as exc:
            raise gr.Error(common.message(str(exc)))
        choices = [(f"#{r.rank} · {r.id} · {r.score:.3f}", r.rank) for r in sorted(rows, key=lambda r: r.rank)]
        common.prune(self.export_dir)
        stem = self.export_dir / f"ranking-{result.timestamp.replace(':', '')}-{uuid.uuid4().hex[:6]}"
        csv_path = export.to_csv(result, rows, stem.with_suffix(".csv"))
        json_path = export.to_json(result, rows, stem.with_suffix(".json"))
        figure = charts.ranking_figure(rows) if rows else None
        return table, figure, gr.update(choices=choices, value=choices[0][1] if choices else None), csv_path, json_path

    def inspect_row(self, state, rank) -> str:
        """The exact prompt of one ranked row, with its full text."""
        if not state or rank is None:
            return '<div class="rr-empty">Run a query, then pick a row to see the exact prompt the model read.</div>'
        result: inspection.RunResult = state["result"]
        row = next((r for r in result.rows if r.rank == int(rank)), None)
        if row is None:
            raise gr.Error(f"There is no row ranked {rank} in the last run.")
        try:
            reranker = self.holder.get(state["settings"])
            view = reranker.prompt(result.query, row.text, instruction=result.instruction)
        except RerankerError as exc:
            raise common.error(exc)
        full = (f'<details class="rr-full"><summary>Full document ({len(row.text):,} characters)</summary>'
                f'<div class="rr-fulltext">{html.escape(row.text)}</div></details>')
        return prompt_view.render(view, document_id=row.id) + full

    # --- presets (each visitor's own, next to the built-in ones) ------------------------------------
    def initial_presets(self) -> dict[str, str]:
        """The presets a page shows before it knows its visitor: on a shared server everyone's, else built-in."""
        return self.presets.built_in if (self.visitors.public or self.visitors.team) else self.presets.all()

    def preset_choices(self, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """The preset dropdowns' choices for this visitor."""
        return gr.update(choices=list(self.presets.all(owner=self.visitors.owner(request, profile))))

    def choose_preset(self, name, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        return self.presets.all(owner=self.visitors.owner(request, profile)).get(name, gr.update())

    def save_preset(self, name, instruction, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        owner = self.visitors.owner(request, profile)
        try:
            replaced = self.presets.save(name, instruction, owner=owner)
        except RerankerError as exc:
            raise common.error(exc)
        name = " ".join(name.split())
        gr.Info(common.message(f"Preset {name!r} {'updated' if replaced else 'saved'}."))
        return gr.update(choices=list(self.presets.all(owner=owner)), value=name), ""

    def delete_preset(self, name, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        owner = self.visitors.owner(request, profile)
        try:
            self.presets.delete(name, owner=owner)
        except RerankerError as exc:
            raise common.error(exc)
        gr.Info(common.message(f"Preset {name!r} deleted."))
        return gr.update(choices=list(self.presets.all(owner=owner)), value=common.DEFAULT_PRESET)
