"""The ranked-table handlers of the inspector page, bound to one process's models, presets and judgements."""

from __future__ import annotations

import html
import logging
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

from reranker.errors import RerankerError
from reranker.files import documents
from reranker.ranking import export, inspection
from reranker.scoring.inputs import check_documents, check_query
from reranker.serve.model_holder import ModelHolder, ModelSettings, display_name
from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.storage.presets import PresetStore
from reranker.ui import common, judging_tab
from reranker.ui.common import DocumentInputs, ModelInputs, Ranking, ViewInputs
from reranker.ui.visitors import Visitors
from reranker.scoring.check import CheckReport
from reranker.view import charts, prompt_view, results_table, run_header

log = logging.getLogger(__name__)


STREAM_STEPS = 10  # a run shows its rows about this many times while it scores


def stream_batch(batch_size: int, total: int) -> int:
    """Documents per step of a streamed run: the batch size, but small enough that rows appear about
    ``STREAM_STEPS`` times (at least 8 a step, so the engine still gets batches)."""
    return max(1, min(batch_size, max(8, -(-total // STREAM_STEPS))))


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
    def count(self, docs: DocumentInputs) -> str:
        """The live count under the document inputs (problems are shown in it, not raised)."""
        try:
            found = docs.collect(self.max_documents, self.holder.limit_reason)
        except RerankerError as exc:
            return f'<span class="rr-error">⚠ {html.escape(str(exc))}</span>'
        notes = "".join(f"<br><small>ℹ {html.escape(n)}</small>" for n in found.notes)
        summary = html.escape(found.summary())
        return f"<b>{summary}</b>{notes}" if found.documents else summary

    def inspect_upload(self, upload):
        """Column pickers and a preview for a table upload; hidden for text files."""
        hidden = gr.update(visible=False, value=None, choices=[])
        try:
            path = common.upload_path(upload)
            if not path or Path(path).suffix.lower() not in documents.TABLE_SUFFIXES:
                return hidden, hidden, gr.update(visible=False, value=None)
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
    def model_state(self, model: ModelInputs) -> tuple[str, str]:
        """The model's load state (``ModelHolder.state``'s, or "invalid" settings) and its status line: which
        model, backend, device, whether it is loaded, cache hits."""
        try:
            settings = model.settings()
        except gr.Error as exc:
            return "invalid", f'<span class="rr-error">⚠ {html.escape(exc.message)}</span>'
        state, reranker, error = self.holder.state(settings)
        name = html.escape(self.model_name(settings.model_id))
        if state == "ready":
            info = reranker.info()
            check = self.holder.check(settings)
            pairs, hits = self.holder.usage(settings, reranker)
            failed = isinstance(check, str) or (isinstance(check, CheckReport) and not check.passed)
            return state, (f"{'🔴' if failed else '🟢'} <b>{name}</b> loaded · backend <b>{info['backend']}</b> "
                           f"on <b>{html.escape(info['device'])}</b>, {html.escape(info['precision'])}"
                           f" · max length {info['max_length']:,} · {pairs:,} pairs scored for visitors, "
                           f"{hits:,} from the cache (the self-check's canary pairs not counted) · "
                           + run_header.check_badge(check))
        if state == "loading":
            return state, (f"⏳ Loading <b>{name}</b> ({html.escape(settings.backend)} backend): "
                           "the first load can take a few minutes…")
        if state == "failed":
            return state, f'<span class="rr-error">⚠ {name} could not be loaded: {html.escape(error)}</span>'
        return state, f"⚪ <b>{name}</b> is not loaded yet; it loads on the first run (or press Load)."

    def status(self, model: ModelInputs) -> str:
        """The status line of ``model_state``."""
        return self.model_state(model)[1]

    @common.shows_errors
    def load(self, model: ModelInputs, progress=gr.Progress()):
        if self.visitors.public:
            raise gr.Error("On this public demo the operator chooses which models are loaded; pick one of the "
                           "offered models and rank: it loads on the first run.")
        settings = model.settings()
        progress(0, desc=f"Loading {settings.model_id}…")
        self.holder.get(settings)
        return (self.status(model),) * 2

    def poll_status(self, model: ModelInputs):
        """Status line for the timer; the timer stops once nothing is loading."""
        state, text = self.model_state(model)
        return text, text, gr.Timer(active=state == "loading")

    # --- ranking ---------------------------------------------------------------------------------
    @common.shows_errors
    def check(self, query, docs: DocumentInputs, model: ModelInputs):
        """Refuse a run early (a message, no output touched) when the inputs cannot be ranked."""
        settings = model.settings()
        self.holder.allow(settings)
        self.to_rank(query, docs)

    def to_rank(self, query, docs: DocumentInputs) -> documents.Collection:
        """The documents to rank against ``query``, or an ``InputError`` that says what is missing."""
        found = docs.collect(self.max_documents, self.holder.limit_reason)
        check_query(query)
        check_documents(len(found.documents), "paste some or upload a file")
        return found

    def model_choices(self) -> list[str] | list[tuple[str, str]]:
        """The model dropdowns' choices: the models the operator offers (``--models``); on a public demo named
        without server paths (a local folder by its name)."""
        if self.visitors.public:
            return [(display_name(m), m) for m in self.holder.models]
        return list(self.holder.models)

    def model_name(self, model: str) -> str:
        """How the page names ``model``: as it is, or on a public demo without a server path."""
        return display_name(model) if self.visitors.public else model

    def reranker(self, settings: ModelSettings, progress, loading: str):
        """The model for ``settings``; ``loading`` is shown while its first use loads it."""
        if self.holder.state(settings)[0] != "ready":
            progress(0, desc=loading)
        return self.holder.get(settings)

    def reranker_for_view(self, settings: ModelSettings):
        """The Reranker of ``settings`` for a view that scores nothing (a prompt): on a public demo only while it is
        loaded, since loading it again there would be a model load outside the visitor's run limit."""
        if self.visitors.public and self.holder.state(settings)[0] != "ready":
            raise gr.Error("The model of these results was released to make room for another one: run again to see "
                           "its prompts.")
        return self.holder.get(settings)

    @common.shows_errors
    def run(self, query, instruction, docs: DocumentInputs, model: ModelInputs, batch_size, view: ViewInputs,
            person=judging_tab.EVERYONE, progress=gr.Progress(), request: gr.Request = None,
            profile: gr.OAuthProfile | None = None):
        """Rank the documents, yielding the rows scored so far (best first) and the run header's progress after each
        batch, then the session's new ``Ranking``, its views (with ``person``'s judgements), the files of the
        ranking as shown (the API's downloads), the summary, the status, the run header and the prompt of the row
        chosen. One run at a time per visitor, within the visitor's limit; closing the generator (Cancel) stops the
        scoring."""
        started = time.perf_counter()
        owner = self.visitors.owner(request, profile)
        shown = self.annotator._whose(person, request, profile)
        settings = model.settings()
        with self.visitors.run(request, profile):
            found = self.to_rank(query, docs)
            reranker = self.reranker(settings, progress, f"Loading {settings.model_id} (first run only)…")
            total = len(found.documents)
            scoring_started = time.perf_counter()
            for step in inspection.stream(reranker, query, instruction, found,
                                          batch_size=stream_batch(int(batch_size or 1), total)):
                if isinstance(step, inspection.RunResult):
                    result = step
                    break
                elapsed = time.perf_counter() - scoring_started
                left = elapsed / step.done * (step.total - step.done)
                progress((step.done, step.total), desc=f"Scoring · about {left:.0f} s left", unit="documents")
                table = results_table.render(step.rows, query, max_length=reranker.max_length, total=total,
                                             scoring=(step.done, step.total))
                yield (gr.skip(), table, *(gr.skip(),) * 7,
                       run_header.scoring(step.done, step.total, left, time.perf_counter() - started), gr.skip())
            for note in result.notes:
                gr.Info(common.message(note))
            ranking = Ranking(result, settings)
            table, figure, row_choice = self._view(ranking, view, *shown)
            outputs = (table, figure, row_choice, *self.export(ranking, view, owner=shown[0]))
            chosen = next((r for r in result.rows if r.rank == row_choice["value"]), None)  # shown in this update
            prompt = self._prompt(reranker, result, chosen) if chosen else self.inspect_row(None, None)
        wall_s = time.perf_counter() - started
        ranking.header = self.header(ranking, owner, wall_s, f"{len(result.rows)} documents ranked")
        yield (ranking, *outputs, self.summary(result, wall_s), *(self.status(model),) * 2, ranking.header, prompt)

    @staticmethod
    def cancelled(ranking: Ranking | None) -> str:
        """The run header after Cancel: the last complete run's again, saying so (its table is shown again)."""
        return run_header.cancelled(ranking.header if ranking else None)

    def header(self, ranking: Ranking, owner: str, wall_s: float, action: str) -> str:
        """The run header of ``ranking`` (see ``view.run_header``)."""
        result = ranking.result
        state, reranker, _ = self.holder.state(ranking.settings)
        precision = reranker.info()["precision"] if reranker is not None else "?"
        preset = next((name for name, text in self.presets.all(owner=owner).items()
                       if text.strip() == (result.instruction or "").strip()), None)
        return run_header.render(model=self.model_name(result.model), backend=result.backend, device=result.device,
                                 precision=precision, check=self.holder.check(ranking.settings),
                                 instruction=result.instruction, preset=preset, max_length=result.max_length,
                                 when=result.timestamp, wall_s=wall_s, action=action)

    def summary(self, result: inspection.RunResult, wall_s: float) -> str:
        rows = result.rows
        relevant = sum(r.score >= 0.5 for r in rows)
        cut = sum(r.truncated for r in rows)
        return (
            f"**{len(rows)} documents** ranked in {wall_s:.2f} s (the whole action; scoring "
            f"{result.seconds:.2f} s) · **{relevant}** scored ≥ 0.5 · {result.cache_hits} from the cache · {cut} "
            f"truncated · `{self.model_name(result.model)}` on {result.backend} ({result.device}), max length "
            f"{result.max_length:,}"
        )

    @common.shows_errors
    def refresh(self, ranking: Ranking | None, view: ViewInputs, person=judging_tab.EVERYONE,
                request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Table (with ``person``'s judgements), chart and row choices for the current filters (no model call, no
        files)."""
        return self._view(ranking, view, *self.annotator._whose(person, request, profile))

    def _view(self, ranking: Ranking | None, view: ViewInputs, shown: str, other: str | None = None):
        if ranking is None:
            empty = results_table.render([], "", max_length=0)
            return empty, None, gr.update(choices=[], value=None)
        result = ranking.result
        rows = view.rows(result)
        table = self.annotator.render(result, rows, view.threshold, bool(view.only), shown, other)
        choices = [(f"#{r.rank} · {r.id} · {r.score:.3f}", r.rank) for r in sorted(rows, key=lambda r: r.rank)]
        figure = charts.ranking_figure(rows) if rows else None
        return table, figure, gr.update(choices=choices, value=choices[0][1] if choices else None)

    def export(self, ranking: Ranking | None, view: ViewInputs, suffixes=(".csv", ".json"),
               owner: str = "") -> list[str]:
        """Files of the ranking as the filters show it, with the run's settings and ``owner``'s labels and notes:
        one per suffix (.csv, .json, .xlsx)."""
        if ranking is None:
            raise gr.Error("Rank documents first, then download the ranking.")
        result = ranking.result
        rows = view.rows(result)
        judgements = {a.doc_hash: a for a in self.annotator.store.for_query(result.query, owner=owner)}
        common.prune(self.export_dir)
        stem = self.export_dir / f"ranking-{result.timestamp.replace(':', '')}-{uuid.uuid4().hex[:6]}"
        writers = {".csv": export.to_csv, ".json": export.to_json, ".xlsx": export.to_xlsx}
        return [str(writers[suffix](result, rows, stem.with_suffix(suffix), judgements)) for suffix in suffixes]

    def export_file(self, suffix: str):
        """A handler writing the ranking as shown, with the visitor's (or the chosen person's) judgements, as
        ``suffix`` when its download is asked for."""
        def write(ranking: Ranking | None, view: ViewInputs, person=judging_tab.EVERYONE,
                  request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> str:
            return self.export(ranking, view, (suffix,), self.annotator._shown(person, request, profile))[0]

        write.__name__ = f"export_{suffix.lstrip('.')}"
        return write

    @staticmethod
    def select_row(ranking: Ranking | None, evt: gr.EventData):
        """The row selected in the table (by its document): the side panel's prompt and explanation follow it."""
        data = getattr(evt, "_data", None) or {}
        if ranking is None or data.get("query") != results_table.query_key(ranking.result.query):
            return gr.skip(), gr.skip()
        row = next((r for r in ranking.result.rows if document_hash(r.text) == data.get("doc")), None)
        return (row.rank, row.rank) if row else (gr.skip(), gr.skip())

    @common.shows_errors
    def inspect_row(self, ranking: Ranking | None, rank) -> str:
        """The exact prompt of one ranked row, with its full text."""
        if ranking is None or rank is None:
            return '<div class="rr-empty">Run a query, then pick a row to see the exact prompt the model read.</div>'
        result = ranking.result
        try:
            rank = int(rank)
        except (TypeError, ValueError):
            raise gr.Error(common.message(f"The row must be a rank (a whole number), got {rank!r}."))
        row = next((r for r in result.rows if r.rank == rank), None)
        if row is None:
            raise gr.Error(f"There is no row ranked {rank} in the last run.")
        return self._prompt(self.reranker_for_view(ranking.settings), result, row)

    @staticmethod
    def _prompt(reranker, result, row) -> str:
        view = reranker.prompt(result.query, row.text, instruction=result.instruction)
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

    @common.shows_errors
    def save_preset(self, name, instruction, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        owner = self.visitors.owner(request, profile)
        replaced = self.presets.save(name, instruction, owner=owner)
        name = " ".join(name.split())
        gr.Info(common.message(f"Preset {name!r} {'updated' if replaced else 'saved'}."))
        return gr.update(choices=list(self.presets.all(owner=owner)), value=name), ""

    @common.shows_errors
    def delete_preset(self, name, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        owner = self.visitors.owner(request, profile)
        self.presets.delete(name, owner=owner)
        gr.Info(common.message(f"Preset {name!r} deleted."))
        return gr.update(choices=list(self.presets.all(owner=owner)), value=common.DEFAULT_PRESET)
