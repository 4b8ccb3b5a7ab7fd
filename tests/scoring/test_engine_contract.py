"""The engine's contract with its callers: one batched scoring loop, the cache key, the tokenizer behind the
engine's lock, engine options checked, the backend contract, the result type's names."""

from __future__ import annotations

import functools
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from reranker import InputError, Judgement, Reranker, Verdict
from reranker.files.documents import collect
from reranker.ranking import inspection
from reranker.scoring import prompt
from reranker.scoring.backends import BACKENDS, _backend_class, engine_options
from reranker.scoring.backends.base import Backend
from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.serve.api import install_api
from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore
from reranker.storage.presets import PresetStore
from tests.support.app_server import run

QUERY = "what causes the northern lights?"
DOCS = [
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "A lighthouse warns ships of dangerous coastlines with a bright rotating beam.",
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "Oxygen atoms excited about 100 km up give the aurora its common green colour.",
    "Banana bread needs ripe bananas, flour, butter and sugar.",
]


# ---- one batched scoring loop ---------------------------------------------------------------------------------

def test_score_in_batches_reports_progress_and_ties_duplicates_exactly(hf_reranker):
    calls = []
    batched = hf_reranker.score([("batches " + QUERY, d) for d in DOCS], batch_size=2,
                                progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert [v.index for v in batched] == list(range(5))
    # the duplicate (index 2) is computed once, in the first batch, so it ties exactly with index 0
    assert batched[2].logodds == batched[0].logodds and batched[2].score == batched[0].score
    whole = hf_reranker.rank("batches " + QUERY, DOCS)
    assert [v.index for v in hf_reranker.rank("batches " + QUERY, DOCS, batch_size=1)] == [v.index for v in whole]
    assert [v.index for v in whole].index(0) < [v.index for v in whole].index(2)  # a tie keeps input order


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8", True])
def test_score_refuses_a_bad_batch_size(hf_reranker, batch_size):
    with pytest.raises(InputError, match="batch size must be a positive whole number"):
        hf_reranker.score([(QUERY, DOCS[0])], batch_size=batch_size)


def test_ranked_rows_contain_the_engines_verdicts(hf_reranker):
    result = inspection.run(hf_reranker, QUERY, None, collect("\n".join(DOCS), "line"), batch_size=2)
    engine = hf_reranker.rank(QUERY, DOCS)
    assert [row.verdict.index for row in result.rows] == [v.index for v in engine]
    assert [row.verdict.score for row in result.rows] == pytest.approx([v.score for v in engine], abs=1e-6)
    row = result.rows[0]
    assert (row.index, row.text, row.score) == (row.verdict.index, row.verdict.document, row.verdict.score)


def test_judgement_is_the_deprecated_name_of_verdict():
    assert Judgement is Verdict


# ---- the score cache's key --------------------------------------------------------------------------------------

def test_editing_the_prompt_template_invalidates_cached_scores(tiny_model, tmp_path, monkeypatch):
    pair = [(QUERY, DOCS[0])]
    (before,) = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512).score(pair)
    monkeypatch.setattr(prompt, "SUFFIX", prompt.SUFFIX.replace("<think>\n\n</think>\n\n", ""))
    (edited,) = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512).score(pair)
    assert not edited.cached  # a stale score of the old template would come back cached
    assert edited.prompt_tokens < before.prompt_tokens and edited.logodds != before.logodds
    monkeypatch.undo()
    (again,) = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512).score(pair)
    assert again.cached and again.logodds == before.logodds


# ---- the tokenizer is used behind the engine's lock only ---------------------------------------------------------

class OneCallAtATime:
    """Wraps a tokenizer and counts calls made while another thread is inside one. A fast tokenizer raises
    "Already borrowed" when such a call changes its settings; any overlap means a caller skipped the engine's lock.
    """

    def __init__(self, inner):
        self._inner = inner
        self._guard = threading.Lock()
        self._inside = 0
        self.calls = self.overlaps = 0

    def _call(self, function, *args, **kwargs):
        with self._guard:
            self._inside += 1
            self.calls += 1
            self.overlaps += self._inside > 1
        try:
            time.sleep(0.002)  # widen the window: an unguarded caller is caught, not lucky
            return function(*args, **kwargs)
        finally:
            with self._guard:
                self._inside -= 1

    def __call__(self, *args, **kwargs):
        return self._call(self._inner, *args, **kwargs)

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        return functools.partial(self._call, value) if callable(value) else value


def test_api_cut_and_prompt_inspector_share_the_engines_tokenizer_safely(tiny_model, tmp_path):
    from reranker.ui.common import Ranking
    from reranker.ui.inspector import Inspector

    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=False)
    reranker = holder.get()
    watched = OneCallAtATime(reranker.tokenizer)
    reranker.tokenizer = reranker.builder.tokenizer = watched
    db = Database(tmp_path / "data.sqlite3")
    inspector = Inspector(holder, PresetStore(db, {}), max_documents=100, annotations=AnnotationStore(db))
    state = Ranking(inspection.run(reranker, QUERY, None, collect("\n".join(DOCS), "line")), holder.default)
    app = FastAPI()
    install_api(app, holder)
    errors, rounds = [], 6

    def guarded(work):
        def loop():
            try:
                for i in range(rounds):
                    work(i)
            except Exception as exc:  # collected and shown by the assertion below
                errors.append(repr(exc))
        return threading.Thread(target=loop)

    with run(app) as url:
        def cut(i):
            body = {"query": f"cut {i} {QUERY}", "documents": [d * 3 for d in DOCS], "max_tokens_per_doc": 6}
            response = httpx.post(f"{url}v2/rerank", json=body, timeout=120)
            assert response.status_code == 200, response.text
            assert "were cut to max_tokens_per_doc=6" in response.json()["meta"]["warnings"][0]

        def inspect(i):
            assert "rr-prompt-doc" in inspector.inspect_row(state, 1 + i % len(DOCS))

        def score(i):
            reranker.score([(f"score {i} {QUERY}", d) for d in DOCS], batch_size=2)

        threads = [guarded(cut), guarded(cut), guarded(inspect), guarded(score)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert watched.calls > 0 and watched.overlaps == 0


# ---- engine options and the backend contract ---------------------------------------------------------------------

def test_a_misspelled_engine_option_is_refused_naming_the_valid_ones(tiny_model):
    with pytest.raises(InputError) as raised:
        Reranker(tiny_model, backend="transformers", cache=False, max_length=512, tensor_paralel_size=2)
    message = str(raised.value)
    assert "'tensor_paralel_size'" in message and "transformers backend" in message
    assert "max_batch_size" in message  # the valid ones are named
    with pytest.raises(InputError, match=r"did you mean 'tensor_parallel_size'\?"):
        Reranker(tiny_model, backend="auto", cache=False, max_length=512, tensor_paralel_size=2)


def test_engine_options_come_from_the_backends_constructors():
    assert {"tensor_parallel_size", "memory_fraction", "max_num_seqs"} <= set(engine_options("vllm"))
    assert {"servers", "api_key", "batch_size", "in_flight", "timeout"} <= set(engine_options("remote"))
    assert set(engine_options("auto")) == (set(engine_options("fast")) | set(engine_options("vllm"))
                                           | set(engine_options("transformers")))
    assert "dtype" not in engine_options("vllm")  # the Reranker sets it, not the caller


def test_the_backend_base_gives_every_default_but_scoring():
    """What a backend implements is score_logodds; the engine calls submit, report, close, kernels and reads
    started_context on every backend alike (tests/scoring/test_backend_contract.py runs the same checks on each)."""
    calls = []

    class Echo(Backend):
        name, device, precision = "echo", "cpu", "float32"

        def score_logodds(self, prompts):
            calls.append(len(prompts))
            return np.array([float(len(p)) for p in prompts], dtype=np.float32)

    echo = Echo()
    wait = echo.submit([[1, 2], [3]])
    assert calls == [2]  # by default the scores are computed before submit returns
    assert list(wait()) == [2.0, 1.0]
    assert (echo.started_context, echo.pipeline_pairs, echo.kernels(), echo.report(), echo.close()) == \
        (None, None, {}, [], None)
    for name in BACKENDS[1:]:
        assert issubclass(_backend_class(name), Backend)
    with pytest.raises(TypeError):  # a backend must implement score_logodds
        type("NoScore", (Backend,), {"name": "x", "device": "cpu"})()


# ---- one definition of the model flags ---------------------------------------------------------------------------

def test_app_and_cli_share_the_model_flags_and_their_defaults(monkeypatch):
    import app
    from reranker.cli import build_parser

    for name in ("RERANKER_MODEL", "RERANKER_BACKEND", "RERANKER_SERVERS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    flags = ("model", "backend", "servers", "servers_api_key", "max_length")
    cli = build_parser().parse_args(["check"])
    page = app.parse_args([])
    assert {f: getattr(cli, f) for f in flags} == {f: getattr(page, f) for f in flags}
    assert (page.model, page.backend, page.max_length) == ("0.6B", "auto", 8192)
    cli = build_parser().parse_args(["check", "--server", "http://a:1", "--max-length", "512"])
    page = app.parse_args(["--server", "http://a:1", "--max-length", "512"])
    assert (cli.servers, cli.max_length) == (page.servers, page.max_length) == (["http://a:1"], 512)
