"""The relevance inspector's Gradio page: layout and event handlers. The logic lives in plain modules
(documents, inspection, results_table, charts, export, presets, prompt_inspector); handlers here only
translate between widgets and those modules, and turn ``RerankerError`` into ``gr.Error`` messages.
"""

from __future__ import annotations

import html
import logging
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

from reranker import charts, documents, export, inspection, prompt_inspector, results_table, ui_annotate
from reranker import ui_compare, ui_multi_query  # the A/B and multi-query tabs; they use this module's helpers
from reranker.annotations import DEFAULT_THRESHOLD, AnnotationStore
from reranker.engine import MODELS
from reranker.errors import InputError, RerankerError
from reranker.metrics import RELEVANT_FROM
from reranker.model_holder import ModelHolder, ModelSettings
from reranker.presets import BUILT_IN, PresetStore
from reranker.prompt import DEFAULT_INSTRUCTION

log = logging.getLogger(__name__)

CSS_PATH = Path(__file__).with_name("inspector.css")
NO_ID = "(row number)"
DEFAULT_PRESET = next(iter(BUILT_IN))
EXAMPLES = [
    [
        "what causes the northern lights?",
        DEFAULT_INSTRUCTION,
        "Auroras happen when charged particles from the solar wind hit gases in Earth's upper atmosphere.\n"
        "The Northern Lights are best seen in winter from places like Tromsø, Fairbanks and Yellowknife.\n"
        "Oxygen atoms excited about 100 km up give the aurora its common green colour.\n"
        "A lighthouse warns ships of dangerous coastlines with a bright rotating beam.\n"
        "Solar storms compress the magnetosphere and push the auroral oval towards the equator.\n"
        "<img src=x onerror=alert(1)> is how a document with HTML in it looks: shown as text.",
        "line",
    ],
    [
        "서울에서 가장 높은 건물은?",
        "Given a question, retrieve passages that answer the question",
        "롯데월드타워는 높이 555미터로 서울에서 가장 높은 건물이다.\n\n"
        "남산서울타워는 남산 위에 세워진 전파탑이자 전망대이다.\n\n"
        "부산 해운대에는 엘시티 더샵 같은 초고층 주거 건물이 있다.\n\n"
        "김치는 배추와 무를 소금에 절여 양념과 함께 발효시킨 음식이다.",
        "blank",
    ],
    [
        "python read a csv file with a semicolon delimiter",
        "Given a code search query, retrieve code snippets and documentation that implement or explain it",
        "import pandas as pd\nframe = pd.read_csv('data.csv', sep=';')\n---\n"
        "with open('data.csv') as f:\n    rows = list(csv.reader(f, delimiter=';'))\n---\n"
        "df.to_excel('out.xlsx', index=False)\n---\n"
        "The semicolon is used as a list separator in many European locales.",
        "dashes",
    ],
]


def _message(text: str) -> str:
    """Text for a toast: Gradio renders toast messages as HTML, and ours can quote file names and columns."""
    return html.escape(text, quote=False)


def _error(exc: RerankerError) -> gr.Error:
    title = "Please check the input" if isinstance(exc, InputError) else "Model problem"
    return gr.Error(_message(str(exc)), title=title)


def _prune(folder: Path, max_age_s: float = 3600) -> None:
    """Delete export files older than ``max_age_s`` (Gradio keeps its own copy of served files)."""
    cutoff = time.time() - max_age_s
    for file in folder.iterdir():
        if file.stat().st_mtime < cutoff:
            file.unlink(missing_ok=True)


def _upload_path(upload) -> str | None:
    if upload is None:
        return None
    return upload if isinstance(upload, str) else getattr(upload, "name", None) or upload.get("path")


def _id_column(choice: str | None) -> str | None:
    return None if choice in (None, "", NO_ID) else choice


RELEVANCE_CHOICES = [(label, level) for level, label in RELEVANT_FROM.items()]  # the metrics' relevant_from


def _k(k) -> int:
    """The metrics' cut-off k as a whole number, or a message that says so."""
    try:
        return int(k)
    except (TypeError, ValueError):
        raise gr.Error(_message(f"k must be a whole number of documents, got {k!r}."))


def _settings(model: str, backend: str, max_length) -> ModelSettings:
    model = (model or "").strip()
    if not model:
        raise gr.Error("Choose a model (0.6B, 4B, 8B) or type the path of a local model folder.")
    try:
        return ModelSettings(model, backend, int(max_length))
    except (TypeError, ValueError):
        raise gr.Error(_message(f"Max length must be a whole number of tokens, got {max_length!r}."))


class Inspector:
    """Handlers bound to one process's models and preset store."""

    def __init__(self, holder: ModelHolder, presets: PresetStore, *, max_documents: int,
                 annotations: AnnotationStore):
        self.holder = holder
        self.presets = presets
        self.max_documents = max_documents
        self.export_dir = Path(tempfile.mkdtemp(prefix="reranker-exports-"))
        self.annotator = ui_annotate.Annotator(annotations, self.export_dir)

    # --- documents -------------------------------------------------------------------------------
    def collect(self, pasted, mode, upload, text_column, id_column) -> documents.Collection:
        return documents.collect(pasted, mode, _upload_path(upload), text_column or None, _id_column(id_column),
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
        path = _upload_path(upload)
        if not path or Path(path).suffix.lower() not in documents.TABLE_SUFFIXES:
            return hidden, hidden, gr.update(visible=False, value=None)
        try:
            frame, _ = documents.read_table(path)
        except RerankerError as exc:
            gr.Warning(_message(str(exc)))
            return hidden, hidden, gr.update(visible=False, value=None)
        text, ident = documents.guess_columns(frame)
        columns = list(frame.columns)
        return (
            gr.update(choices=columns, value=text, visible=True),
            gr.update(choices=[NO_ID, *columns], value=ident or NO_ID, visible=True),
            gr.update(value=frame.head(5).astype(str), visible=True),
        )

    # --- models ----------------------------------------------------------------------------------
    def status(self, model, backend, max_length) -> str:
        """One line: which model, backend, device, whether it is loaded, cache hits."""
        try:
            settings = _settings(model, backend, max_length)
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
        settings = _settings(model, backend, max_length)
        progress(0, desc=f"Loading {settings.model_id}…")
        try:
            self.holder.get(settings)
        except RerankerError as exc:
            raise _error(exc)
        return (self.status(model, backend, max_length),) * 2

    def poll_status(self, model, backend, max_length):
        """Status line for the timer; the timer stops once nothing is loading."""
        text = self.status(model, backend, max_length)
        return text, text, gr.Timer(active=text.startswith("⏳"))

    # --- ranking ---------------------------------------------------------------------------------
    def check(self, query, pasted, mode, upload, text_column, id_column, model, backend, max_length):
        """Refuse a run early (a message, no output touched) when the inputs cannot be ranked."""
        _settings(model, backend, max_length)
        try:
            self._inputs(query, pasted, mode, upload, text_column, id_column)
        except RerankerError as exc:
            raise _error(exc)

    def _inputs(self, query, pasted, mode, upload, text_column, id_column) -> documents.Collection:
        found = self.collect(pasted, mode, upload, text_column, id_column)
        if not (query or "").strip():
            raise InputError("The query is empty: type what you are searching for.")
        if not found.documents:
            raise InputError("There are no documents to rank: paste some or upload a file.")
        return found

    def model_choices(self) -> list[str]:
        """The model dropdowns' choices: the known sizes, and the default model when it is another."""
        default = self.holder.default.model
        return list(MODELS) + ([default] if default not in MODELS else [])

    def _reranker(self, settings: ModelSettings, progress, loading: str):
        """The model for ``settings``; ``loading`` is shown while its first use loads it."""
        if self.holder.state(settings)[0] != "ready":
            progress(0, desc=loading)
        return self.holder.get(settings)

    def run(self, query, instruction, pasted, mode, upload, text_column, id_column, model, backend, max_length,
            batch_size, sort, min_score, min_confidence, top_k, threshold=DEFAULT_THRESHOLD, only=False,
            progress=gr.Progress()):
        settings = _settings(model, backend, max_length)
        try:
            found = self._inputs(query, pasted, mode, upload, text_column, id_column)
            reranker = self._reranker(settings, progress, f"Loading {settings.model_id} (first run only)…")
            progress((0, len(found.documents)), desc="Scoring", unit="documents")
            result = inspection.run(
                reranker, query, instruction, found, batch_size=int(batch_size or 1),
                progress=lambda done, total: progress((done, total), desc="Scoring", unit="documents"),
            )
        except RerankerError as exc:
            raise _error(exc)
        for note in result.notes:
            gr.Info(_message(note))
        state = {"result": result, "settings": settings}
        return (state, *self.refresh(state, sort, min_score, min_confidence, top_k, threshold, only),
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

    def refresh(self, state, sort, min_score, min_confidence, top_k, threshold=DEFAULT_THRESHOLD, only=False):
        """Table (with judgements), chart, row choices and export files for the current filters (no model call)."""
        if not state:
            empty = results_table.render([], "", max_length=0)
            return empty, None, gr.update(choices=[], value=None), None, None
        result: inspection.RunResult = state["result"]
        try:
            rows = inspection.view(result.rows, sort=sort, min_score=float(min_score or 0),
                                   min_confidence=float(min_confidence or 0), top_k=int(top_k) if top_k else None)
        except (RerankerError, ValueError) as exc:
            raise gr.Error(_message(f"Check the filters: {exc}"))
        try:
            table = self.annotator.render(result, rows, threshold, bool(only))
        except RerankerError as exc:
            raise gr.Error(_message(str(exc)))
        choices = [(f"#{r.rank} · {r.id} · {r.score:.3f}", r.rank) for r in sorted(rows, key=lambda r: r.rank)]
        _prune(self.export_dir)
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
            raise _error(exc)
        full = (f'<details class="rr-full"><summary>Full document ({len(row.text):,} characters)</summary>'
                f'<div class="rr-fulltext">{html.escape(row.text)}</div></details>')
        return prompt_inspector.render(view, reranker.tokenizer, document_id=row.id) + full

    # --- presets ---------------------------------------------------------------------------------
    def choose_preset(self, name):
        return self.presets.all().get(name, gr.update())

    def save_preset(self, name, instruction):
        try:
            replaced = self.presets.save(name, instruction)
        except RerankerError as exc:
            raise _error(exc)
        name = " ".join(name.split())
        gr.Info(_message(f"Preset {name!r} {'updated' if replaced else 'saved'}."))
        return gr.update(choices=list(self.presets.all()), value=name), ""

    def delete_preset(self, name):
        try:
            self.presets.delete(name)
        except RerankerError as exc:
            raise _error(exc)
        gr.Info(_message(f"Preset {name!r} deleted."))
        return gr.update(choices=list(self.presets.all()), value=DEFAULT_PRESET)


def build_app(holder: ModelHolder, presets: PresetStore, *, max_documents: int = documents.MAX_DOCUMENTS,
              annotations: AnnotationStore | None = None) -> gr.Blocks:
    """The inspector page. ``holder`` supplies the (shared) models; ``presets`` the instruction presets;
    ``annotations`` the judgements (default: in the presets' database)."""
    ui = Inspector(holder, presets, max_documents=max_documents,
                   annotations=annotations or AnnotationStore(presets.db))
    default = holder.default
    with gr.Blocks(title="Qwen3 Reranker · relevance inspector", delete_cache=(3600, 3600)) as demo:
        result_state = gr.State(None)
        gr.HTML('<div class="rr-header"><h1>Relevance inspector</h1><p>Rank documents against a query with '
                'Qwen3-Reranker, see how sure the model is, and inspect the exact prompt it read. '
                'Model settings: the ‹ panel at the top right.</p></div>')
        status = gr.HTML(elem_classes="rr-status")
        status_timer = gr.Timer(2.0, active=True)

        with gr.Sidebar(label="Settings", open=False, position="right"):
            gr.Markdown("### Model settings\nShared by everyone using this server; a new model loads once.")
            model = gr.Dropdown(ui.model_choices(), value=default.model, label="Model", allow_custom_value=True,
                                info="0.6B / 4B / 8B, a hub id, or a local folder path")
            backends = ["auto", "vllm", "transformers"] + (["remote"] if default.backend == "remote" else [])
            backend = gr.Radio(backends, value=default.backend, label="Backend",
                               info="auto = vLLM when it runs here, else transformers")
            max_length = gr.Number(default.max_length, label="Max length (tokens)", precision=0, minimum=64)
            batch_size = gr.Number(32, label="Batch size (documents per engine call)", precision=0, minimum=1)
            load_button = gr.Button("Load model")
            status_side = gr.HTML(elem_classes="rr-status")

        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                query = gr.Textbox(label="Query", placeholder="What are you searching for? (Enter ranks)", max_lines=4)
                with gr.Group():
                    preset = gr.Dropdown(list(presets.all()), value=DEFAULT_PRESET, label="Instruction preset")
                    instruction = gr.Textbox(DEFAULT_INSTRUCTION, label="Instruction", lines=2, max_lines=6)
                with gr.Row(equal_height=True):
                    preset_name = gr.Textbox(placeholder="Name to save this instruction as a preset", show_label=False,
                                             scale=3, container=False)
                    save_button = gr.Button("💾 Save", size="sm", scale=1, min_width=70)
                    delete_button = gr.Button("🗑 Delete", size="sm", scale=1, min_width=70)
                    reset_button = gr.Button("↺ Default", size="sm", scale=1, min_width=70)
            with gr.Column(scale=7):
                with gr.Tabs():
                    with gr.Tab("Paste"):
                        split_mode = gr.Radio([(label, key) for key, label in documents.SPLIT_MODES.items()],
                                              value="line", label="How documents are separated")
                        pasted = gr.Textbox(label="Documents", lines=9, max_lines=18,
                                            placeholder="One document per line (or choose another separator above)")
                    with gr.Tab("Upload"):
                        upload = gr.File(label="File (.txt .md .csv .tsv .jsonl .json .xlsx .parquet)",
                                         file_types=list(documents.SUPPORTED_SUFFIXES), type="filepath")
                        with gr.Row():
                            # custom values: API callers name a column without having seen the preview
                            text_column = gr.Dropdown(label="Text column / field", visible=False,
                                                      allow_custom_value=True)
                            id_column = gr.Dropdown(label="Id column (optional)", visible=False,
                                                    allow_custom_value=True)
                        preview = gr.Dataframe(label="First rows", visible=False, interactive=False, max_height=220)
                count = gr.HTML(ui.count("", "line", None, None, None), elem_classes="rr-count")

        run_button = gr.Button("Rank documents", variant="primary", size="lg")
        summary = gr.Markdown()
        with gr.Row():
            sort = gr.Dropdown([(label, key) for key, label in inspection.SORTS.items()], value="rank", label="Sort by",
                               scale=2)
            min_score = gr.Slider(0, 1, value=0, step=0.01, label="Minimum score", scale=2)
            min_confidence = gr.Slider(0, 1, value=0, step=0.01, label="Minimum confidence", scale=2)
            top_k = gr.Number(0, label="Top-k (0 = all)", precision=0, minimum=0, scale=1)
        chart = gr.Plot(label="Scores by rank and their distribution", show_label=False)
        judging = ui_annotate.build_controls(ui.annotator)
        table = gr.HTML(results_table.render([], "", max_length=0), js_on_load=ui_annotate.TABLE_JS,
                        css_template=ui_annotate.TABLE_CSS)
        with gr.Row():
            csv_download = gr.DownloadButton("Download CSV", value=None, size="sm")
            json_download = gr.DownloadButton("Download JSON", value=None, size="sm")
        judgement_panel = ui_annotate.build_panel()
        with gr.Accordion("Prompt inspector: the exact prompt the model read for one row", open=False):
            row_choice = gr.Dropdown([], label="Row", value=None)
            prompt_view = gr.HTML(ui.inspect_row(None, None))

        gr.Examples(EXAMPLES, inputs=[query, instruction, pasted, split_mode], label="Examples (English, 한국어, code)")

        # --- wiring --------------------------------------------------------------------------------
        settings = [model, backend, max_length]
        doc_inputs = [pasted, split_mode, upload, text_column, id_column]
        filters = [sort, min_score, min_confidence, top_k]
        view_outputs = [table, chart, row_choice, csv_download, json_download]

        status_outputs = [status, status_side, status_timer]
        demo.load(ui.poll_status, settings, status_outputs, queue=False)
        status_timer.tick(ui.poll_status, settings, status_outputs, queue=False, show_progress="hidden")
        for component in settings:
            component.change(ui.poll_status, settings, status_outputs, queue=False, show_progress="hidden")
        load_button.click(ui.load, settings, [status, status_side], concurrency_id="model")

        # one queue for the live count, so its answers arrive in the order the inputs changed
        count_event = dict(fn=ui.count, inputs=doc_inputs, outputs=count, show_progress="hidden", api_name=False,
                           concurrency_id="count", concurrency_limit=1, trigger_mode="always_last")
        upload.change(ui.inspect_upload, upload, [text_column, id_column, preview], queue=False).then(**count_event)
        for component in (pasted, split_mode, text_column, id_column):
            component.change(**count_event)

        run_inputs = [query, instruction, *doc_inputs, *settings, batch_size, *filters, judging.threshold, judging.only]
        for trigger in (run_button.click, query.submit):
            trigger(ui.check, [query, *doc_inputs, *settings], None, concurrency_limit=None, api_name=False).success(
                ui.run, run_inputs, [result_state, *view_outputs, summary, status, status_side],
                concurrency_id="model", show_progress_on=[table], api_name="rank" if trigger == run_button.click else False)
        for component in filters:
            component.change(ui.refresh, [result_state, *filters, judging.threshold, judging.only], view_outputs,
                             api_name=False,
                             show_progress="hidden", concurrency_limit=None)
        row_choice.change(ui.inspect_row, [result_state, row_choice], prompt_view, api_name="inspect_row",
                          concurrency_limit=None)

        ui_annotate.wire(ui.annotator, judging, judgement_panel, table=table, result_state=result_state,
                         filters=filters)

        preset.input(ui.choose_preset, preset, instruction, queue=False)
        reset_button.click(lambda: (DEFAULT_PRESET, DEFAULT_INSTRUCTION), None, [preset, instruction], queue=False)
        save_button.click(ui.save_preset, [preset_name, instruction], [preset, preset_name], api_name="save_preset")
        delete_button.click(ui.delete_preset, preset, preset, api_name="delete_preset")

        ui_compare.build_tab(ui, query=query, instruction=instruction, doc_inputs=doc_inputs, settings=settings,
                             batch_size=batch_size)
        ui_multi_query.build_tab(ui, settings=settings, batch_size=batch_size)
    demo.queue(default_concurrency_limit=1, max_size=64)
    return demo
