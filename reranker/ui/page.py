"""The relevance inspector's Gradio page: layout and wiring. Handlers live in ``inspector`` (ranked table) and
one module per tab; the logic in plain modules below ``ui/``."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from reranker.files import documents
from reranker.ranking import inspection
from reranker.view import results_table, run_header
from reranker.serve.model_holder import ModelHolder
from reranker.scoring.prompt import DEFAULT_INSTRUCTION
from reranker.storage.judgements import AnnotationStore
from reranker.storage.presets import PresetStore
from reranker.ui import (bakeoff_tab, common, compare_tab, explain_panel, judged_tab, judging_tab, multi_query_tab,
                         replacing, sweep_tab)
from reranker.ui.common import DocumentInputs, Fields, ModelInputs, ViewInputs, bind
from reranker.ui.inspector import Inspector
from reranker.ui.visitors import BROWSER_STORAGE_KEY, Visitors

CSS_PATH = Path(__file__).parents[1] / "view" / "inspector.css"
EXAMPLE_NAMES = ["Northern lights (English)", "서울에서 가장 높은 건물 (한국어)", "A CSV with semicolons (code)"]
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




def build_app(holder: ModelHolder, presets: PresetStore, *, max_documents: int = documents.MAX_DOCUMENTS,
              annotations: AnnotationStore | None = None, visitors: Visitors | None = None, sign_in: bool = False,
              data_note: str = "", queue_size: int = 64) -> gr.Blocks:
    """The inspector page. ``holder`` supplies the (shared) models; ``presets`` the instruction presets;
    ``annotations`` the judgements (default: in the presets' database); ``visitors`` tells visitors apart
    (public demo, team server); ``sign_in`` adds the Hugging Face sign-in button; ``data_note`` says where data
    lives; ``queue_size`` is how many runs may wait before visitors are told to come back."""
    visitors = visitors or Visitors()
    ui = Inspector(holder, presets, max_documents=max_documents,
                   annotations=annotations or AnnotationStore(presets.db), visitors=visitors)
    default = holder.default
    with gr.Blocks(title="Qwen3 Reranker · relevance inspector", delete_cache=(3600, 3600)) as demo:
        result_state = gr.State(None)
        gr.HTML('<div class="rr-header"><h1>Relevance inspector</h1><p>Rank documents against a query with '
                'Qwen3-Reranker, see how sure the model is, and inspect the exact prompt it read. '
                'Model settings: the ‹ panel at the top right.</p></div>')
        if visitors.public:
            with gr.Row(equal_height=True):
                gr.Markdown(_PUBLIC_NOTE + (" Sign in with Hugging Face to keep them across visits." if sign_in
                                            else "") + "  \n" + data_note, elem_id="rr-public-note")
                if sign_in:
                    gr.LoginButton(scale=0, min_width=200)
        status = gr.HTML(elem_classes="rr-status")
        status_timer = gr.Timer(2.0, active=True)

        with gr.Sidebar(label="Settings", open=False, position="right"):
            gr.Markdown("### Model settings\nShared by everyone using this server; a new model loads once.")
            # custom values reach the server, which answers with the models it offers (an API caller sees them too)
            # public: the operator's models named without server paths
            model = gr.Dropdown(ui.model_choices(), value=default.model, label="Model", allow_custom_value=True,
                                info="the models this server offers (its operator sets them with --models)")
            backends = holder.backends or ["auto", "fast", "vllm", "transformers", "openvino"] + (
                ["remote"] if default.backend == "remote" else [])
            backend = gr.Radio(backends, value=default.backend, label="Backend", interactive=len(backends) > 1,
                               info="auto = fast on a GPU, else vLLM when it runs here (on ≤ 2 CPU cores OpenVINO "
                                    "first), else transformers")
            max_length = gr.Number(default.max_length, label="Max length (tokens)", precision=0, minimum=64)
            batch_size = gr.Number(32, label="Batch size (documents per engine call)", precision=0, minimum=1)
            load_button = gr.Button("Load model", visible=not visitors.public)
            status_side = gr.HTML(elem_classes="rr-status")
            if data_note and not visitors.public:
                gr.Markdown(data_note, elem_id="rr-data-note")

        with gr.Tabs(elem_id="rr-workspaces") as workspaces:
            with gr.Tab("Rank & judge", id="rank"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5):
                        query = gr.Textbox(label="Query", placeholder="What are you searching for? (Enter ranks)",
                                           max_lines=4)
                        with gr.Group():
                            preset = gr.Dropdown(list(ui.initial_presets()), value=common.DEFAULT_PRESET,
                                                 label="Instruction preset")
                            instruction = gr.Textbox(DEFAULT_INSTRUCTION, label="Instruction", lines=2, max_lines=6)
                        with gr.Row(equal_height=True):
                            preset_name = gr.Textbox(placeholder="Name to save this instruction as a preset",
                                                     show_label=False, scale=3, container=False)
                            save_button = gr.Button("💾 Save", size="sm", scale=1, min_width=70)
                            delete_button = gr.Button("🗑 Delete", size="sm", scale=1, min_width=70)
                            reset_button = gr.Button("↺ Default", size="sm", scale=1, min_width=70)
                    with gr.Column(scale=7):
                        with gr.Tabs():
                            with gr.Tab("Paste"):
                                split_mode = gr.Radio([(label, key) for key, label in documents.SPLIT_MODES.items()],
                                                      value="line", label="How documents are separated")
                                pasted = gr.Textbox(label="Documents", lines=9, max_lines=18,
                                                    placeholder="One document per line (or choose another "
                                                                "separator above)")
                            with gr.Tab("Upload"):
                                upload = gr.File(label="File (.txt .md .csv .tsv .jsonl .json .xlsx .parquet)",
                                                 file_types=list(documents.SUPPORTED_SUFFIXES), type="filepath")
                                with gr.Row():
                                    # custom values: API callers name a column without having seen the preview
                                    text_column = gr.Dropdown(label="Text column / field", visible=False,
                                                              allow_custom_value=True)
                                    id_column = gr.Dropdown(label="Id column (optional)", visible=False,
                                                            allow_custom_value=True)
                                preview = gr.Dataframe(label="First rows", visible=False, interactive=False,
                                                       max_height=220)
                        count = gr.HTML(ui.count(DocumentInputs("", "line", None, None, None)), elem_classes="rr-count")
                with gr.Row(equal_height=True):
                    run_button = gr.Button("Rank documents", variant="primary", size="lg", scale=5)
                    cancel_button = gr.Button("Cancel", size="lg", scale=1, min_width=90, elem_id="rr-cancel")
                # pinned above the results: what made them, the self-check, progress while a run goes, stale on
                # any change
                header = gr.HTML(run_header.empty(), elem_id="rr-run-header", min_height=48)
                summary = gr.Markdown()
                with gr.Row(equal_height=False, elem_id="rr-results"):
                    with gr.Column(scale=5, min_width=360):
                        with gr.Row():
                            sort = gr.Dropdown([(label, key) for key, label in inspection.SORTS.items()],
                                               value="rank", label="Sort by", scale=2, min_width=140)
                            min_score = gr.Slider(0, 1, value=0, step=0.01, label="Minimum score", scale=2,
                                                  min_width=140)
                            min_confidence = gr.Slider(0, 1, value=0, step=0.01, label="Minimum confidence",
                                                       scale=2, min_width=140)
                            top_k = gr.Number(0, label="Top-k (0 = all)", precision=0, minimum=0, scale=1,
                                              min_width=90)
                        judging = judging_tab.build_controls(ui.annotator)
                        table = gr.HTML(results_table.render([], "", max_length=0), js_on_load=judging_tab.TABLE_JS,
                                        # ack: each judgement's answer
                                        css_template=judging_tab.TABLE_CSS, ack=None, elem_id="rr-ranked")
                        with gr.Row():
                            # the buttons write the ranking as shown when clicked, then the hidden download buttons
                            # fetch it; a run fills the hidden ones too, for the API's /rank (its outputs 4 and 5)
                            csv_button = gr.Button("Download CSV", size="sm")
                            xlsx_button = gr.Button("Download Excel", size="sm")
                            json_button = gr.Button("Download JSON", size="sm")
                            csv_download = gr.DownloadButton("CSV file", value=None, visible="hidden",
                                                             elem_id="rr-download-csv")
                            json_download = gr.DownloadButton("JSON file", value=None, visible="hidden",
                                                              elem_id="rr-download-json")
                            xlsx_download = gr.DownloadButton("Excel file", value=None, visible="hidden",
                                                              elem_id="rr-download-xlsx")
                        chart = gr.Plot(label="Scores by rank and their distribution", show_label=False)
                    # beside the table: the selected row's explanation, prompt and judgement
                    with gr.Column(scale=2, min_width=300, elem_id="rr-side"):
                        explainer = explain_panel.Explainer(holder, ui.export_dir, visitors)
                        explaining = explain_panel.build(explainer)
                        with gr.Accordion("Prompt inspector: the exact prompt the model read for one row",
                                          open=True, elem_id="rr-prompt-inspector"):
                            row_choice = gr.Dropdown([], label="Row", value=None)
                            prompt_view = gr.HTML(ui.inspect_row(None, None))
                        editor = judging_tab.build_editor()

                with gr.Row(equal_height=True):
                    example = gr.Dropdown(EXAMPLE_NAMES, value=None, scale=3,
                                          label="Examples (English, 한국어, code): they replace the inputs above "
                                                "(Undo puts yours back)")
                    # what an example or a judged query brought back replaced, for Undo
                    rank_undo = replacing.Undo([query, instruction, pasted, split_mode],
                                               "↶ Undo: put back the replaced inputs", elem_id="rr-undo-replace",
                                               what="query, instruction and documents", scale=2)

        # --- wiring --------------------------------------------------------------------------------
        settings = Fields(ModelInputs, model=model, backend=backend, max_length=max_length)
        docs = Fields(DocumentInputs, pasted=pasted, mode=split_mode, upload=upload, text_column=text_column,
                      id_column=id_column)
        view = Fields(ViewInputs, sort=sort, min_score=min_score, min_confidence=min_confidence, top_k=top_k,
                      threshold=judging.threshold, only=judging.only)
        view_outputs = [table, chart, row_choice]

        status_outputs = [status, status_side, status_timer]
        poll = bind(ui.poll_status, settings)
        demo.load(poll, poll.inputs, status_outputs, queue=False)
        status_timer.tick(poll, poll.inputs, status_outputs, queue=False, show_progress="hidden")
        for component in settings.components:
            component.change(poll, poll.inputs, status_outputs, queue=False, show_progress="hidden")
        load = bind(ui.load, settings)
        load_button.click(load, load.inputs, [status, status_side], concurrency_id="model",
                          api_name=False if visitors.public else "load")

        # one queue for the live count, so its answers arrive in the order the inputs changed
        count_docs = bind(ui.count, docs)
        count_event = dict(fn=count_docs, inputs=count_docs.inputs, outputs=count, show_progress="hidden",
                           api_name=False, concurrency_id="count", concurrency_limit=1, trigger_mode="always_last")
        upload.change(ui.inspect_upload, upload, [text_column, id_column, preview], queue=False).then(**count_event)
        for component in (pasted, split_mode, text_column, id_column):
            component.change(**count_event)

        check, run = bind(ui.check, query, docs, settings), bind(ui.run, query, instruction, docs, settings,
                                                                  batch_size, view, judging.shown)
        runs = [trigger(check, check.inputs, None, concurrency_limit=None, api_name=False).success(
                    run, run.inputs, [result_state, *view_outputs, csv_download, json_download, summary, status,
                                      status_side, header, prompt_view],
                    concurrency_id="model", show_progress_on=[header],
                    api_name="rank" if trigger == run_button.click else False)
                for trigger in (run_button.click, query.submit)]
        for trigger in (run_button.click, query.submit):  # the header, with the progress, in sight
            trigger(None, js=run_header.SHOW_JS, queue=False, api_name=False)
        # Cancel stops the scoring; the table and header show the last complete run again, saying so
        refresh = bind(ui.refresh, result_state, view, judging.shown)
        cancel_button.click(refresh, refresh.inputs, view_outputs, cancels=runs, api_name=False,
                            concurrency_limit=None).then(ui.cancelled, result_state, header, api_name=False,
                                                         queue=False)
        for component in (query, instruction, *docs.components, *settings.components):
            component.change(None, js=run_header.STALE_JS, queue=False, api_name=False, show_progress="hidden")
        for component in (sort, min_score, min_confidence, top_k):
            component.change(refresh, refresh.inputs, view_outputs, api_name=False, show_progress="hidden",
                             concurrency_limit=None)
        for button, suffix, download in ((csv_button, ".csv", csv_download), (json_button, ".json", json_download),
                                         (xlsx_button, ".xlsx", xlsx_download)):
            export = bind(ui.export_file(suffix), result_state, view, judging.shown)
            button.click(export, export.inputs, download, api_name=False, concurrency_limit=None).success(
                None, js=f"() => document.querySelector('#{download.elem_id}').click()")
        # A run shows its chosen row's prompt itself, in the update that sets the row (a second event on the new
        # state could read the row before the update and land last); a row chosen afterwards shows its own.
        row_choice.change(ui.inspect_row, [result_state, row_choice], prompt_view, api_name="inspect_row",
                          concurrency_limit=None, trigger_mode="always_last", show_progress="hidden")
        table.select(ui.select_row, result_state, [row_choice, explaining.rank], api_name=False, queue=False)

        explain_panel.wire(explainer, explaining, table=table, result_state=result_state, batch_size=batch_size)
        if visitors.public:  # the browser's signed id first: it says whose data this session reads
            browser_id = gr.BrowserState(None, storage_key=BROWSER_STORAGE_KEY, secret=visitors.storage_secret())
            arrival = demo.load(visitors.arrive, browser_id, browser_id, api_name=False, queue=False)
        if visitors.public or visitors.team:  # each visitor's own presets, once the page knows who they are
            (arrival.then if visitors.public else demo.load)(ui.preset_choices, None, preset, api_name=False,
                                                             queue=False)
            preset.focus(ui.preset_choices, None, preset, api_name=False, queue=False)

        preset.input(ui.choose_preset, preset, instruction, queue=False)
        reset_button.click(lambda: (common.DEFAULT_PRESET, DEFAULT_INSTRUCTION), None, [preset, instruction], queue=False)
        save_button.click(ui.save_preset, [preset_name, instruction], [preset, preset_name], api_name="save_preset")
        delete_button.click(ui.delete_preset, preset, preset, api_name="delete_preset")

        judged = judged_tab.JudgedQueries(ui.annotator, rank_undo)
        with workspaces:  # the other workspaces, each its own tab
            with gr.Tab("Compare", id="compare"):
                ab_inputs = compare_tab.build_tab(ui, query=query, instruction=instruction, docs=docs,
                                                  settings=settings, batch_size=batch_size, rank_undo=rank_undo,
                                                  workspaces=workspaces)
                multi_query_tab.build_tab(ui, settings=settings, batch_size=batch_size, judged=judged,
                                          workspaces=workspaces)
                bakeoff_tab.build_tab(ui, settings=settings.components)  # rerankers against each other
            sweep_tab.build_tab(ui, settings=settings, batch_size=batch_size, threshold=judging.threshold,
                                ab=ab_inputs, judged=judged, workspaces=workspaces)
            with gr.Tab("Judged data", id="judged") as judged_workspace:
                gr.Markdown("Every query you judged, with how many documents, nDCG@10 of the scores stored with "
                            "the judgements, and the disagreements at the threshold of *Rank & judge*. Click a "
                            "query to bring it back (its query, judged documents and instruction) into *Rank & "
                            "judge*.")
                judged_table = gr.Dataframe(headers=judged_tab.COLUMNS, interactive=False, wrap=True,
                                            max_height=420, elem_id="rr-judged-queries", show_search="search")
                transfer = judging_tab.build_transfer()
        judging_tab.wire(ui.annotator, judging, judging_tab.Panel(*editor, *transfer), demo=demo, table=table,
                         result_state=result_state, view=view)
        judged_workspace.select(judged.table, [judging.threshold, judging.shown], judged_table, api_name=False)
        judged_table.select(judged.open, [judged_table, *rank_undo.components, judging.shown],
                            [*rank_undo.outputs, workspaces], api_name=False)
        # queued, so that their messages (what was replaced, what came back) are shown
        load_example = example_loader(rank_undo)
        example.input(load_example, [example, *rank_undo.components], [*rank_undo.outputs, example],
                      api_name=False, concurrency_limit=None)
        rank_undo.wire()
    demo.queue(default_concurrency_limit=1, max_size=queue_size)
    return demo


def example_loader(undo: replacing.Undo):
    """The Examples' handler: an example replaces the query, instruction and documents; ``undo`` keeps the replaced
    ones, and a message says so."""
    def load_example(name, query, instruction, pasted, mode):
        if name not in EXAMPLE_NAMES:
            return (*[gr.skip()] * len(undo.outputs), None)
        return (*undo.replace(EXAMPLES[EXAMPLE_NAMES.index(name)], (query, instruction, pasted, mode),
                              f"Example “{name}” loaded."), None)
    return load_example


_PUBLIC_NOTE = ("**Public demo.** Your judgements, notes and presets are yours alone: other visitors cannot see, "
                "export or change them. Without signing in they belong to this browser: kept when you reload, "
                "not seen from another browser or a private window, lost if you clear this site's data.")
