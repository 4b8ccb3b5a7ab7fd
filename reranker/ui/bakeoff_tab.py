"""The inspector's "Bake-off" tab: a test collection (BEIR files, an ir_datasets id, a Hugging Face dataset in the
MTEB layout, or OpenSearch / Elasticsearch responses with qrels), Qwen3-Reranker variants, Sentence-Transformers
cross-encoders and a /rerank endpoint side by side against the first stage (no rerank): the leaderboard with
lift, speed, cost and licence, the per-query winners, each reranker's exact prompt, CSV and HTML downloads.

Self-contained: the page registers it with one call, :func:`build_tab`. Layout and handlers only; the work is
``reranker.bakeoff``.
"""

from __future__ import annotations

import html
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from reranker.bakeoff import board as bakeoff_board, report
from reranker.bakeoff.contenders import Contender, QwenContender, open_cache
from reranker.bakeoff.run import run_bakeoff
from reranker.errors import InputError
from reranker.files import beir_folder, hf_datasets, ir_datasets_source, search_responses
from reranker.ranking.first_stage import DEFAULT_DEPTH
from reranker.ranking.metrics import DEFAULT_K
from reranker.serve.model_holder import ModelSettings
from reranker.tuning import leaderboard
from reranker.tuning.report import leaderboard_figure
from reranker.ui import common
from reranker.ui.inspector import Inspector
from reranker.view import prompt_view

SOURCES = [("BEIR files (corpus, queries, qrels)", "beir"), ("ir_datasets id", "ir_datasets"),
           ("Hugging Face dataset (MTEB layout)", "hf"), ("OpenSearch / Elasticsearch responses + qrels", "search")]
TESTS = [(label, key) for key, label in leaderboard.STAT_TESTS.items()]
MAX_PAIRS = 20000  # candidates x rerankers the page scores in one run; larger bake-offs: the CLI


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _number(value, name: str, *, whole: bool = False, minimum: float = 0):
    if value in (None, ""):
        return None
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a {'whole ' if whole else ''}number, got {value!r}.") from None
    if number < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {number}.")
    return number


@dataclass(frozen=True)
class QwenEntry:
    """What a visitor's state keeps of a Qwen3 contender: its model settings and instruction (never the engine)."""

    settings: ModelSettings
    instruction: str | None


class BakeoffTab:
    """The tab's handlers: they hold the loaded cross-encoders between runs."""

    def __init__(self, inspector: Inspector):
        self.inspector = inspector
        self.exports = Path(tempfile.mkdtemp(prefix="reranker-bakeoff-"))
        self._encoders: dict[str, Contender] = {}

    def collection(self, kind, corpus, queries, qrels, dataset_id, split, responses, response_qrels, topics,
                   text_field):
        path = common.upload_path
        if kind == "beir":
            files = {"corpus": path(corpus), "queries": path(queries), "qrels": path(qrels)}
            missing = [name for name, value in files.items() if not value]
            if missing:
                raise InputError(f"Upload the {' and '.join(missing)} file(s) of the BEIR collection.")
            return beir_folder.read_beir_files(files["corpus"], files["queries"], files["qrels"],
                                               f"BEIR files ({Path(files['qrels']).name})")
        if kind in ("ir_datasets", "hf"):
            if self.inspector.visitors.public:
                raise InputError("The public demo does not download collections: upload BEIR files or search "
                                 "responses, or run the bake-off on your own machine (docs/bakeoff.md).")
            if not (dataset_id or "").strip():
                raise InputError("Type the dataset's id (e.g. beir/scifact/test, or mteb/scifact).")
            if kind == "ir_datasets":
                return ir_datasets_source.load(dataset_id)
            return hf_datasets.load(dataset_id.strip(), (split or "test").strip())
        if not path(responses) or not path(response_qrels):
            raise InputError("Upload the search responses and the TREC qrels that judge them.")
        return search_responses.read_search_responses(path(responses), path(response_qrels),
                                                      topics=path(topics) or None,
                                                      text_field=(text_field or "").strip() or None)

    def contenders(self, qwen_models, instructions, cross_encoders, endpoint_url, endpoint_model, api_key,
                   endpoint_price, hourly, backend, max_length, progress) -> tuple[list[Contender], dict]:
        """The contenders to run, and what a visitor's state keeps of each: a Qwen3 contender's settings and
        instruction (``QwenEntry``, never its engine), the others themselves. Every Qwen3 model is checked
        against the server's offer before any loads."""
        hourly = _number(hourly, "The machine's price per hour")
        out: list[Contender] = []
        kept: dict = {}
        models = list(dict.fromkeys(m.strip() for m in (qwen_models or "").split(",") if m.strip()))
        texts = _lines(instructions) or [None]
        all_settings = [common.ModelInputs(model, backend, max_length).settings() for model in models]
        for settings in all_settings:
            self.inspector.holder.allow(settings)
        for model, settings in zip(models, all_settings):
            reranker = self.inspector.reranker(settings, progress, f"Loading {settings.model_id} (first use only)…")
            for number, instruction in enumerate(texts, start=1):
                name = f"Qwen3 {model}" + (f" · instruction {number}" if len(texts) > 1 else "")
                out.append(QwenContender(name, reranker, instruction, price_per_hour=hourly))
                kept[name] = QwenEntry(settings, instruction)
        public = self.inspector.visitors.public
        if (_lines(cross_encoders) or (endpoint_url or "").strip()) and public:
            raise InputError("The public demo runs only its own Qwen3-Reranker: run cross-encoders and endpoints "
                             "on your own machine (docs/bakeoff.md).")
        for model in _lines(cross_encoders):
            if model not in self._encoders:
                from reranker.bakeoff.cross_encoder import CrossEncoderContender

                progress(0, desc=f"Loading {model}…")
                self._encoders[model] = CrossEncoderContender(Path(model).name or model, model,
                                                              cache=open_cache(self.inspector.holder.cache))
            encoder = self._encoders[model]
            encoder.price_per_hour = hourly
            out.append(encoder)
        if (endpoint_url or "").strip():
            from reranker.bakeoff.rerank_endpoint import EndpointContender

            out.append(EndpointContender(f"{(endpoint_model or '').strip()} (endpoint)", endpoint_url.strip(),
                                         (endpoint_model or "").strip(), api_key=api_key or None,
                                         cache=open_cache(self.inspector.holder.cache),
                                         price_per_1k_pairs=_number(endpoint_price, "The endpoint's price")))
        if not out:
            raise InputError("Choose at least one reranker: a Qwen3-Reranker model, a cross-encoder or an endpoint.")
        return out, {c.name: kept.get(c.name, c) for c in out}

    def run(self, kind, corpus, queries, qrels, dataset_id, split, responses, response_qrels, topics, text_field,
            sample, seed, depth, qwen_models, instructions, cross_encoders, endpoint_url, endpoint_model, api_key,
            endpoint_price, hourly, k, relevant_from, stat_test, model, backend, max_length,
            progress=gr.Progress(), request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """Load, rank and measure; the outputs of the tab (``model``: the settings panel's, unused here: the Qwen
        models are the tab's own list). One run at a time per visitor, within the visitor's limit."""
        k = common.k_value(k)
        with self.inspector.visitors.run(request, profile):
            return self._run(kind, corpus, queries, qrels, dataset_id, split, responses, response_qrels, topics,
                             text_field, sample, seed, depth, qwen_models, instructions, cross_encoders, endpoint_url,
                             endpoint_model, api_key, endpoint_price, hourly, k, relevant_from, stat_test, backend,
                             max_length, progress)

    @common.shows_errors
    def _run(self, kind, corpus, queries, qrels, dataset_id, split, responses, response_qrels, topics, text_field,
             sample, seed, depth, qwen_models, instructions, cross_encoders, endpoint_url, endpoint_model, api_key,
             endpoint_price, hourly, k, relevant_from, stat_test, backend, max_length, progress):
        sample = _number(sample, "The number of queries", whole=True) or None  # 0: every query
        seed = _number(seed, "The seed", whole=True) or 0
        depth = _number(depth, "The depth", whole=True, minimum=1) or DEFAULT_DEPTH
        progress(0, desc="Loading the collection…")
        collection = self.collection(kind, corpus, queries, qrels, dataset_id, split, responses, response_qrels,
                                     topics, text_field).sample(sample, seed)
        contenders, kept = self.contenders(qwen_models, instructions, cross_encoders, endpoint_url, endpoint_model,
                                     api_key, endpoint_price, hourly, backend, max_length, progress)
        pairs = sum(min(depth, len(collection.run.get(q, {})) if collection.run else depth)
                    for q in collection.queries) * len(contenders)
        if pairs > MAX_PAIRS:
            raise InputError(f"This bake-off would score up to {pairs:,} pairs; the page takes {MAX_PAIRS:,}. "
                             "Sample fewer queries, lower the depth, or run `python -m reranker bakeoff`.")

        def report_progress(done, total, eta, name):
            progress((done, total), desc=f"Scoring {name} · about {eta:.0f} s left", unit="pairs")

        result = run_bakeoff(collection, contenders, depth=depth, progress=report_progress)
        board = bakeoff_board.build(result, k=k, relevant_from=int(relevant_from), stat_test=stat_test,
                                    seed=seed)
        for note in result.notes:
            gr.Info(common.message(note))
        common.prune(self.exports)
        stem = self.exports / f"bakeoff-{uuid.uuid4().hex[:8]}"
        csv_path = report.leaderboard_csv(board, f"{stem}.csv")
        html_path = report.write_html(f"{stem}.html", board, contenders=contenders)
        state = {"contenders": kept, "judged": result.sweep.judged}  # settings, not engines
        names = list(state["contenders"])
        query_ids = [q.query_id for q in result.sweep.judged.queries if q.documents]
        return (state, gr.update(choices=names, value=names[0]),
                gr.update(choices=query_ids, value=query_ids[0] if query_ids else None),
                self.summary(board), board.display(), leaderboard_figure(board.board), report.lift_figure(board),
                board.winners(), report.example_prompts(board, contenders), collection.summary(), str(csv_path),
                str(html_path))

    @common.shows_errors
    def prompt(self, state, name, query_id, candidate) -> str:
        """The exact prompt ``name`` reads for one query's candidate (1 = the first stage's first)."""
        if not state:
            return '<div class="rr-empty">Run a bake-off first.</div>'
        contender = state["contenders"].get(name)
        query = next((q for q in state["judged"].queries if q.query_id == query_id), None)
        if contender is None or query is None or not query.documents:
            raise gr.Error("Choose a reranker and a query of this bake-off.")
        try:
            position = int(candidate or 1)
        except (TypeError, ValueError):
            raise gr.Error(common.message(f"The candidate must be a whole number, got {candidate!r}."))
        if not 1 <= position <= len(query.documents):
            raise gr.Error(f"Query {common.message(query_id)} has {len(query.documents)} candidates: choose 1 to "
                           f"{len(query.documents)}.")
        doc_id, text = query.documents[position - 1]
        if isinstance(contender, QwenEntry):
            reranker = self.inspector.reranker_for_view(contender.settings)
            view = reranker.prompt(query.query, text, instruction=contender.instruction)
            return prompt_view.render(view, document_id=doc_id)
        prompt = contender.prompt(query.query, text)
        if prompt is None:
            return f'<div class="rr-empty">{html.escape(contender.describe())}: a remote endpoint builds its own ' \
                   'prompt; it is not shown.</div>'
        return prompt_view.render_text(prompt, text, prompt_tokens=len(contender.prompt_ids(query.query, text)),
                                       name=doc_id)

    @staticmethod
    def summary(board: bakeoff_board.BakeoffBoard) -> str:
        result, first = board.result, board.metrics[0]
        best = board.board.best
        helped = [n for n, lifts in board.lifts.items() if lifts[first].low > 0]
        hurt = [n for n, lifts in board.lifts.items() if lifts[first].high < 0]
        esc = lambda text: html.escape(text, quote=False)  # noqa: E731
        lines = [f"**{len(result.info)} reranker(s)** and **no rerank** over **{len(board.board.query_ids)} "
                 f"queries** · candidates: {esc(result.first_stage)} · {esc(result.collection.source)}",
                 f"Best by {first}: **{esc(best.name)}** ({best.means[first]:.4f}) · reranking helps (lift interval "
                 f"above 0): {esc(', '.join(helped)) or 'none'} · hurts: {esc(', '.join(hurt)) or 'none'}",
                 f"{esc(board.board.test_description)}, Holm-corrected: † differs from the best, * lift significant,"
                 f" α = {board.board.alpha} · speed measured on {esc(result.machine)}"]
        return "  \n".join(lines)


def build_tab(inspector: Inspector, *, settings: list) -> None:
    """The "Bake-off" tab. ``settings``: the page's model, backend and max length components."""
    tab = BakeoffTab(inspector)
    with gr.Tab("Bake-off"):
        state = gr.State(None)
        gr.Markdown("Which reranker wins on **your** data, and does reranking help at all? Load a judged "
                    "collection, pick rerankers, and compare them with the first stage's own order (no rerank). "
                    "Walk-through: docs/bakeoff.md.")
        kind = gr.Radio(SOURCES, value="beir", label="Data", elem_id="rr-bakeoff-source")
        with gr.Row(visible=True) as beir_group:
            corpus = gr.File(label="corpus.jsonl", type="filepath", elem_id="rr-bakeoff-corpus")
            queries = gr.File(label="queries.jsonl", type="filepath", elem_id="rr-bakeoff-queries")
            qrels = gr.File(label="qrels (query-id corpus-id score .tsv)", type="filepath",
                            elem_id="rr-bakeoff-qrels")
        with gr.Row(visible=False) as id_group:
            dataset_id = gr.Textbox(label="Dataset id", placeholder="beir/scifact/test  ·  mteb/scifact", scale=3)
            split = gr.Textbox("test", label="Split (Hugging Face)", scale=1)
        with gr.Row(visible=False) as search_group:
            responses = gr.File(label="_search responses (JSONL, JSON or _msearch)", type="filepath")
            response_qrels = gr.File(label="TREC qrels", type="filepath")
            topics = gr.File(label="Topics (optional)", type="filepath")
            text_field = gr.Textbox(label="Text field in _source (optional)")
        with gr.Row():
            sample = gr.Number(0, label="Queries to sample (0 = all)", precision=0, minimum=0)
            seed = gr.Number(0, label="Seed", precision=0)
            depth = gr.Number(DEFAULT_DEPTH, label="Candidates per query (depth)", precision=0, minimum=1)
        with gr.Row(equal_height=False):
            with gr.Column():
                qwen_models = gr.Textbox(inspector.holder.default.model, label="Qwen3-Reranker models "
                                         "(comma-separated; empty = none)", elem_id="rr-bakeoff-qwen")
                instructions = gr.Textbox(label="Instructions, one per line (empty = the default)", lines=2)
            with gr.Column():
                cross_encoders = gr.Textbox(label="Sentence-Transformers cross-encoders, one per line (hub id or "
                                                  "folder)", lines=2, elem_id="rr-bakeoff-cross-encoders")
                hourly = gr.Number(None, label="Machine price per hour (optional: cost of local models)")
            with gr.Column():
                endpoint_url = gr.Textbox(label="/rerank endpoint URL (Cohere or vLLM schema; optional)",
                                          elem_id="rr-bakeoff-endpoint")
                endpoint_model = gr.Textbox(label="Endpoint model", elem_id="rr-bakeoff-endpoint-model")
                api_key = gr.Textbox(label="API key (sent only to that endpoint, never stored)", type="password")
                endpoint_price = gr.Number(None, label="Endpoint price per 1,000 pairs (optional)")
        with gr.Row():
            k = gr.Number(DEFAULT_K, label="k for nDCG@k and P@k", precision=0, minimum=1)
            relevant_from = gr.Radio(common.RELEVANCE_CHOICES, value=1, label="Relevant for MRR, MAP and P@k")
            stat_test = gr.Radio(TESTS, value="fisher", label="Significance test")
        run_button = gr.Button("Run the bake-off", variant="primary", elem_id="rr-bakeoff-run")
        summary = gr.Markdown(elem_classes="rr-bakeoff-summary")
        board_table = gr.Dataframe(label="Leaderboard", interactive=False, wrap=True,
                                   elem_classes="rr-bakeoff-leaderboard")
        with gr.Row():
            board_chart = gr.Plot(show_label=False, elem_classes="rr-bakeoff-chart")
            lift_chart = gr.Plot(show_label=False, elem_classes="rr-bakeoff-lift")
        with gr.Row():
            csv_download = gr.DownloadButton("Download the leaderboard (CSV)", value=None, size="sm")
            html_download = gr.DownloadButton("Download the report (HTML)", value=None, size="sm")
        winners = gr.Dataframe(label="Per-query winners", interactive=False, wrap=True, max_height=360)
        prompts = gr.Dataframe(label="Exact prompts (the first query's first candidate)", interactive=False,
                               wrap=True, max_height=360)
        gr.Markdown("#### The exact prompt of one pair, for any reranker (the document is marked)")
        with gr.Row(equal_height=True):
            prompt_run = gr.Dropdown([], label="Reranker", allow_custom_value=True)
            prompt_query = gr.Dropdown([], label="Query", allow_custom_value=True)
            prompt_candidate = gr.Number(1, label="Candidate (first-stage rank)", precision=0, minimum=1)
            prompt_button = gr.Button("Show the prompt", size="sm")
        prompt_html = gr.HTML(elem_classes="rr-bakeoff-prompt")
        loaded = gr.Dataframe(label="What was loaded", interactive=False, wrap=True)

    kind.change(lambda v: (gr.update(visible=v == "beir"), gr.update(visible=v in ("ir_datasets", "hf")),
                           gr.update(visible=v == "search")), kind, [beir_group, id_group, search_group],
                queue=False, api_name=False)
    run_button.click(
        tab.run, [kind, corpus, queries, qrels, dataset_id, split, responses, response_qrels, topics, text_field,
                  sample, seed, depth, qwen_models, instructions, cross_encoders, endpoint_url, endpoint_model,
                  api_key, endpoint_price, hourly, k, relevant_from, stat_test, *settings],
        [state, prompt_run, prompt_query, summary, board_table, board_chart, lift_chart, winners, prompts, loaded,
         csv_download, html_download],
        api_name="bakeoff", concurrency_id="model", show_progress_on=[board_table])
    prompt_button.click(tab.prompt, [state, prompt_run, prompt_query, prompt_candidate], prompt_html,
                        api_name="bakeoff_prompt", concurrency_id="model")


