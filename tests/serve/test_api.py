"""The Cohere-compatible REST API through real HTTP on the tiny model: schemas, limits, auth, errors, load, clients."""

from __future__ import annotations

import asyncio
import logging
import re
import threading

import httpx
import pytest

from app import create_server
from reranker.scoring.check import run_check
from reranker.serve import protocol
from reranker.serve.model_holder import ModelHolder, ModelSettings
from tests.support import ROOT
from tests.support.app_server import run, serve

KEY = "test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_DOCUMENTS = 60
MAX_BYTES = 64 * 1024
QUERY = "what causes the northern lights?"
DOCS = [
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "A lighthouse warns ships of dangerous coastlines with a bright rotating beam.",
    "Oxygen atoms excited about 100 km up give the aurora its common green colour.",
    "Banana bread needs ripe bananas, flour, butter and sugar.",
]


@pytest.fixture(scope="module")
def api(tiny_model, tmp_path_factory):
    """Base URL (no trailing slash) of one app server with an API key and small limits."""
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("api-data"), api_key=KEY,
               max_documents=MAX_DOCUMENTS, max_request_bytes=MAX_BYTES) as url:
        yield url.rstrip("/")


def post(api, version, body, **kwargs):
    return httpx.post(f"{api}/{version}/rerank", json=body, headers=kwargs.pop("headers", AUTH), timeout=60, **kwargs)


def expected(reranker, query, docs, instruction=None):
    """(index, score) best first, from the engine itself. Tests use a new query each, so the server computes fresh
    scores in the same batches as this call (cached scores of other batches can differ in the 8th digit)."""
    return [(j.index, j.score) for j in reranker.rank(query, docs, instruction=instruction)]


# ---- schemas -------------------------------------------------------------------------------------------------

def test_v2_ranks_like_the_engine(api, tiny_model, hf_reranker):
    response = post(api, "v2", {"model": tiny_model, "query": QUERY + " v2", "documents": DOCS})
    assert response.status_code == 200
    body = response.json()
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected(hf_reranker, QUERY + " v2", DOCS)
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])  # no documents unless asked
    assert len(body["id"]) == 36 and body["meta"]["api_version"] == {"version": "2"}
    assert body["meta"]["billed_units"] == {"search_units": 1}
    assert body["meta"]["tokens"]["input_tokens"] == sum(j.prompt_tokens for j in hf_reranker.rank(QUERY + " v2", DOCS))


def test_v1_top_n_and_return_documents_keep_document_objects(api, hf_reranker):
    docs = [{"text": DOCS[0], "id": "a"}, DOCS[1], {"text": DOCS[2], "id": "c", "year": 2024}]
    body = post(api, "v1", {"query": "v1 " + QUERY, "documents": docs, "top_n": 2, "return_documents": True}).json()
    ranking = expected(hf_reranker, "v1 " + QUERY, DOCS[:3])[:2]
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == ranking
    shown = {0: {"text": DOCS[0], "id": "a"}, 1: {"text": DOCS[1]}, 2: {"text": DOCS[2], "id": "c", "year": 2024}}
    assert [r["document"] for r in body["results"]] == [shown[i] for i, _ in ranking]
    assert body["meta"]["api_version"] == {"version": "1"}
    assert post(api, "v1", {"query": QUERY, "documents": DOCS, "top_n": 99}).json()["results"].__len__() == 4


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_min_score_keeps_results_at_or_above_it_before_top_n(api, hf_reranker, version):
    query = f"min score {version} " + QUERY
    ranking = expected(hf_reranker, query, DOCS)
    cut = ranking[1][1]  # the second-best score: exactly two results reach it
    body = post(api, version, {"query": query, "documents": DOCS, "min_score": cut}).json()
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == ranking[:2]
    body = post(api, version, {"query": query, "documents": DOCS, "min_score": cut, "top_n": 1}).json()
    assert [r["index"] for r in body["results"]] == [ranking[0][0]]
    assert post(api, version, {"query": query, "documents": DOCS, "min_score": 1.0}).json()["results"] == []
    response = post(api, version, {"query": query, "documents": DOCS, "min_score": 1.5})
    assert response.status_code == 422 and "min_score" in response.json()["message"]


def test_instruction_changes_scores_and_matches_rank(api, hf_reranker):
    instruction = "Given a question about cooking, find the recipe"
    plain = post(api, "v2", {"query": "auroras explained", "documents": DOCS}).json()["results"]
    tuned = post(api, "v2", {"query": "auroras explained", "documents": DOCS, "instruction": instruction}).json()
    tuned = tuned["results"]
    assert [(r["index"], r["relevance_score"]) for r in tuned] == expected(hf_reranker, "auroras explained", DOCS,
                                                                           instruction)
    assert {r["index"]: r["relevance_score"] for r in plain} != {r["index"]: r["relevance_score"] for r in tuned}


def test_rank_fields_rank_on_the_named_fields(api, hf_reranker):
    docs = [{"title": "Auroras", "text": DOCS[0]}, {"title": "Baking", "text": DOCS[3]}]
    body = post(api, "v1", {"query": "fields " + QUERY, "documents": docs, "rank_fields": ["title", "text"]}).json()
    texts = [f"title: {d['title']}\ntext: {d['text']}" for d in docs]
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected(hf_reranker, "fields " + QUERY,
                                                                                     texts)


def test_max_tokens_per_doc_cuts_documents(api, hf_reranker):
    docs = [" ".join(["aurora borealis lights"] * 40), "Auroras glow green.", DOCS[1]]
    query = "cut " + QUERY  # a new query: fresh scores, batched as the engine batches them below
    body = post(api, "v2", {"query": query, "documents": docs, "max_tokens_per_doc": 5}).json()
    tokenizer = hf_reranker.tokenizer
    first_five = [tokenizer.decode(tokenizer(" " + d)["input_ids"][:5]).lstrip() for d in docs]
    assert first_five[1] == docs[1] and len(first_five[0]) < len(docs[0])
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected(hf_reranker, query, first_five)
    assert "2 document(s) were cut to max_tokens_per_doc=5" in body["meta"]["warnings"][0]


def test_model_field_accepts_the_served_names_only(api, tiny_model):
    for name in (tiny_model, tiny_model.rstrip("/").split("/")[-1], tiny_model.upper()):
        assert post(api, "v2", {"model": name, "query": QUERY, "documents": DOCS}).status_code == 200
    response = post(api, "v2", {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS})
    assert response.status_code == 404
    assert "'rerank-v3.5' is not served here" in response.json()["message"] and tiny_model in response.json()["message"]


def test_models_and_health(api, tiny_model, hf_reranker):
    models = httpx.get(f"{api}/v1/models", headers=AUTH).json()["models"]
    assert [m["name"] for m in models] == [tiny_model] and models[0]["endpoints"] == ["rerank"]
    assert httpx.get(f"{api}/v1/models/{tiny_model.split('/')[-1]}", headers=AUTH).json()["name"] == tiny_model
    health = httpx.get(f"{api}/health")  # open without the key: load balancers poll it
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ready" and body["model"] == tiny_model and body["backend"] == "transformers"
    assert body["device"] == "cpu" and body["in_flight"] == 0 and body["queued"] == 0
    report = run_check(hf_reranker)  # the random tiny model fails the canary check; /health says so
    assert body["canary"]["passed"] is False
    assert body["canary"]["relevant"] == pytest.approx(report.relevant, abs=1e-6)
    paths = httpx.get(f"{api}/openapi.json").json()["paths"]
    assert {"/v1/rerank", "/v2/rerank", "/v1/models", "/health"} <= set(paths)


# ---- limits, validation, auth, errors ------------------------------------------------------------------------

def test_too_many_documents_is_413(api):
    response = post(api, "v2", {"query": QUERY, "documents": ["doc"] * (MAX_DOCUMENTS + 1)})
    assert response.status_code == 413
    assert response.json()["message"].startswith(f"{MAX_DOCUMENTS + 1} documents is more than this server accepts")
    assert response.json()["limit_documents"] == MAX_DOCUMENTS


def test_too_many_bytes_is_413_declared_or_streamed(api):
    body = b'{"query": "q", "documents": ["' + b"x" * MAX_BYTES + b'"]}'
    declared = httpx.post(f"{api}/v2/rerank", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["limit_bytes"] == MAX_BYTES
    assert f"at most {MAX_BYTES:,} bytes" in declared.json()["message"]

    def chunks():  # no Content-Length: the limit holds on the bytes actually received
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    streamed = httpx.post(f"{api}/v2/rerank", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413 and "more than" in streamed.json()["message"]


@pytest.mark.parametrize("body, field, words", [
    ({"documents": DOCS}, "query", "is required"),
    ({"query": QUERY, "documents": [DOCS[0], 7]}, "documents[1]", 'an object with a "text" field, not a number'),
    ({"query": QUERY, "documents": [DOCS[0], ""]}, "documents[1]", "is empty"),
    ({"query": QUERY, "documents": [{"title": "x"}]}, "documents[0].text", "has no text field 'text'"),
    ({"query": QUERY, "documents": DOCS, "top_n": 0}, "top_n", "greater than or equal to 1"),
    ({"query": "  ", "documents": DOCS}, "query", "the query is empty"),
    ({"query": "\x1c\u3000\n", "documents": DOCS}, "query", "the query is empty"),  # whitespace as str.strip sees it
    ({"query": QUERY, "documents": []}, "documents", "at least one document"),
    ({"query": QUERY, "documents": DOCS, "top_k": 2}, "top_k", "unknown field 'top_k'"),
])
def test_validation_errors_are_422_naming_the_field(api, body, field, words):
    response = post(api, "v2", body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert words in response.json()["message"] and "Traceback" not in response.text


@pytest.mark.parametrize("content, content_type, words", [
    (b'{"query": ', "application/json", "not valid JSON"),
    (b"", "application/json", "request body is empty"),
    (b"query=x", "application/x-www-form-urlencoded", "must be a JSON object"),
    (b'["a", "b"]', "application/json", "must be a JSON object"),
])
def test_a_body_that_is_not_a_json_object_is_422(api, content, content_type, words):
    response = httpx.post(f"{api}/v1/rerank", content=content, headers={**AUTH, "Content-Type": content_type})
    assert response.status_code == 422 and words in response.json()["message"]


def test_the_schema_declares_the_limits_and_every_status(api):
    schema = httpx.get(f"{api}/openapi.json").json()
    request = schema["components"]["schemas"]["RerankV2Request"]["properties"]
    assert (request["documents"]["minItems"], request["documents"]["maxItems"]) == (1, MAX_DOCUMENTS)
    assert request["query"]["pattern"] == protocol.NOT_BLANK and request["top_n"]["anyOf"][0]["minimum"] == 1
    responses = {path: set(operation["responses"]) for path, item in schema["paths"].items()
                 for operation in item.values()}
    assert responses["/v2/rerank"] == {"200", "400", "401", "404", "413", "422", "500", "503"}
    assert responses["/v1/models/{name}"] == {"200", "401", "404", "422", "500"}
    assert responses["/health"] == {"200", "500", "503"}
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's 422 body, never sent here


def test_not_blank_is_str_isspace():
    blank = re.compile(f"^(?!.*{protocol.NOT_BLANK})", re.DOTALL)
    whitespace = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert [c for c in map(chr, range(0x110000)) if blank.match(c)] == whitespace


@pytest.mark.parametrize("method, path, allow", [
    ("GET", "/v2/rerank", "POST"), ("DELETE", "/v1/rerank", "POST"), ("POST", "/v1/models", "GET"),
    ("PUT", "/v1/models/any/name", "GET"), ("QUERY", "/health", "GET"),
])
def test_methods_a_route_does_not_serve_are_405(api, method, path, allow):
    response = httpx.request(method, f"{api}{path}")
    assert response.status_code == 405 and response.headers["Allow"] == allow
    assert response.json()["message"] == f"{method} is not allowed here; this path serves {allow}."


def test_any_model_name_gets_the_apis_404(api):
    response = httpx.get(f"{api}/v1/models/two%0Alines", headers=AUTH)  # a line break: still the API's route
    assert response.status_code == 404 and "'two\\nlines' is not served here" in response.json()["message"]


def test_api_key_is_required_on_the_api_and_the_page(api):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = post(api, "v2", {"query": QUERY, "documents": DOCS}, headers=headers)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "key" in response.json()["message"]
    assert httpx.get(f"{api}/v1/models").status_code == 401
    assert post(api, "v2", {"query": QUERY, "documents": DOCS}).status_code == 200
    assert httpx.get(f"{api}/config").status_code == 401  # the page logs in with the key (tests/serve/test_public.py)


def test_unexpected_errors_are_logged_not_shown(api, tiny_model, monkeypatch, caplog):
    from reranker.scoring.engine import Reranker

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Reranker, "rank", broken)
    with caplog.at_level(logging.ERROR, logger="reranker.serve.routing"):
        response = post(api, "v2", {"query": QUERY, "documents": DOCS})
    assert response.status_code == 500
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    reference = response.json()["reference"]
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)


def test_query_too_long_for_max_length_is_400(api):
    response = post(api, "v2", {"query": "word " * 600, "documents": DOCS})
    assert response.status_code == 400 and "max_length=512 tokens is too small" in response.json()["message"]


# ---- loading, concurrency ------------------------------------------------------------------------------------

class HeldBackHolder(ModelHolder):
    """A real ModelHolder whose load starts only when the test says so, to observe the "loading" state."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = threading.Event()

    def _load(self, settings, future):
        self.release.wait(60)
        super()._load(settings, future)


def test_503_with_retry_after_while_the_model_loads(tiny_model, tmp_path, caplog):
    holder = HeldBackHolder(ModelSettings(tiny_model, "transformers", 512), cache=str(tmp_path))
    with run(create_server(holder, data_dir=tmp_path)) as url:
        health = httpx.get(url + "health")
        assert health.status_code == 503 and health.json()["status"] == "not loaded"
        response = httpx.post(url + "v2/rerank", json={"query": QUERY, "documents": DOCS})  # starts the load
        assert response.status_code == 503 and response.headers["Retry-After"] == "10"
        assert "still loading" in response.json()["message"]
        assert httpx.get(url + "health").json()["status"] == "loading"
        with caplog.at_level(logging.INFO, logger="reranker.serve.model_holder"):
            holder.release.set()
            holder.get()
        assert httpx.post(url + "v2/rerank", json={"query": QUERY, "documents": DOCS}).status_code == 200
        assert httpx.get(url + "health").json()["canary"]["passed"] is False
    assert any("canary check of" in r.getMessage() and "FAIL" in r.getMessage() for r in caplog.records)


async def _concurrent(api, queries):
    async with httpx.AsyncClient(headers=AUTH, timeout=300) as client:
        responses = await asyncio.gather(*[
            client.post(f"{api}/v2/rerank", json={"query": q, "documents": DOCS, "top_n": 3}) for q in queries])
    return responses


def test_50_concurrent_requests_are_all_answered_correctly(api, hf_reranker):
    queries = [f"question number {i} about auroras" for i in range(50)]
    responses = asyncio.run(_concurrent(api, queries))
    assert [r.status_code for r in responses] == [200] * 50
    for query, response in zip(queries, responses):
        got = [(r["index"], r["relevance_score"]) for r in response.json()["results"]]
        assert got == expected(hf_reranker, query, DOCS)[:3]
    assert httpx.get(f"{api}/health").json()["in_flight"] == 0


@pytest.mark.slow
def test_concurrent_requests_on_vllm(tiny_model, vllm_reranker, tmp_path):
    queries = [f"vllm question {i}" for i in range(20)]
    with serve(tiny_model, "vllm", tmp_path, api_key=KEY) as url:
        responses = asyncio.run(_concurrent(url.rstrip("/"), queries))
        assert httpx.get(url + "health").json()["backend"] == "vllm"
    for query, response in zip(queries, responses):
        got = [(r["index"], r["relevance_score"]) for r in response.json()["results"]]
        want = expected(vllm_reranker, query, DOCS)[:3]
        assert [i for i, _ in got] == [i for i, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-6)


# ---- Cohere clients, changing only the base URL ----------------------------------------------------------------

def test_cohere_sdk_v2_and_v1(api, tiny_model, hf_reranker):
    cohere = pytest.importorskip("cohere")
    query = "sdk " + QUERY
    ranking = expected(hf_reranker, query, DOCS)
    v2 = cohere.ClientV2(api_key=KEY, base_url=api).rerank(model=tiny_model, query=query, documents=DOCS, top_n=2)
    assert [(r.index, r.relevance_score) for r in v2.results] == ranking[:2]
    assert v2.meta.api_version.version == "2"
    v1 = cohere.Client(api_key=KEY, base_url=api).rerank(model=tiny_model, query=query, documents=DOCS, top_n=3,
                                                         return_documents=True)
    assert [(r.index, r.relevance_score, r.document.text) for r in v1.results] == [
        (i, s, DOCS[i]) for i, s in ranking[:3]]
    with pytest.raises(cohere.core.api_error.ApiError) as refused:
        cohere.ClientV2(api_key="wrong", base_url=api).rerank(model=tiny_model, query=QUERY, documents=DOCS)
    assert refused.value.status_code == 401


def test_langchain_cohere_rerank(api, tiny_model, hf_reranker):
    langchain_cohere = pytest.importorskip("langchain_cohere")
    from langchain_core.documents import Document

    reranker = langchain_cohere.CohereRerank(cohere_api_key=KEY, base_url=api, model=tiny_model, top_n=2)
    kept = reranker.compress_documents([Document(page_content=d) for d in DOCS], "langchain " + QUERY)
    ranking = expected(hf_reranker, "langchain " + QUERY, DOCS)[:2]
    assert [(d.page_content, d.metadata["relevance_score"]) for d in kept] == [(DOCS[i], s) for i, s in ranking]


# ---- the latency benchmark script ---------------------------------------------------------------------------

def test_latency_benchmark_reports_percentiles(api, tmp_path):
    import importlib.util
    import json

    path = ROOT / "benchmarks" / "api_latency.py"
    spec = importlib.util.spec_from_file_location("api_latency", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "latency.json"
    bench.main(["--url", api, "--api-key", KEY, "--requests", "4", "--warmup", "1", "--documents", "5",
                "--doc-words", "20", "--pool", "10", "--out", str(out)])
    report = json.loads(out.read_text())
    assert len(report["all_ms"]) == 4 and report["latency_ms"]["p50"] <= report["latency_ms"]["p95"]
    assert report["server"]["backend"] == "transformers" and report["client_machine"]["cpu_cores"] >= 1
    assert report["workload"]["documents_per_request"] == 5
    assert bench.percentile([1, 2, 3, 4], 50) == 2.5 and bench.percentile([5, 1, 3], 100) == 5
