"""The REST API's HTTP contract as an OpenAPI fuzzer sees it: schemathesis against the app on the tiny model."""

import re

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.specs.openapi.checks import positive_data_acceptance

from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.serve.api import install_api
from tests.support.app_server import serve

KEY = "contract-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
OPTIONS = {"api_key": KEY, "max_documents": 20, "max_request_bytes": 256 * 1024}


def _schema() -> dict:
    """The API's OpenAPI schema for OPTIONS, built without a model (so at collection, in well under a second)."""
    app = FastAPI()
    install_api(app, ModelHolder(ModelSettings("unloaded", "transformers", 512)), **OPTIONS)
    return app.openapi()


schema = schemathesis.openapi.from_dict(_schema(), config=schemathesis.Config.from_dict({
    "generation": {"mode": "all", "max-examples": 100},
    "checks": {"negative_data_rejection": {"expected-statuses": ["400", "401", "404", "405", "413", "422"]}},
}))


@schemathesis.check
def valid_data_accepted(ctx, response, case):
    """schemathesis' positive_data_acceptance, less the one rule a JSON schema cannot state: an object document
    must have a text in each field that the request's rank_fields names ("text" by default). A 422 whose every
    error is about an object document is that rule; any other refusal of valid data still fails."""
    if response.status_code == 422 and isinstance(case.body, dict):
        documents = case.body.get("documents") or []
        indexes = [re.match(r"documents\[(\d+)\]", e["field"]) for e in response.json()["errors"]]
        if all(m and isinstance(documents[int(m[1])], dict) for m in indexes):
            return None
    return positive_data_acceptance(ctx, response, case)


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """Base URL of the whole app (API + page) on the tiny model, with OPTIONS."""
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("contract-data"), **OPTIONS) as url:
        yield url.rstrip("/")


@pytest.mark.slow
def test_the_fuzzed_schema_is_the_servers(server):
    served = httpx.get(f"{server}/openapi.json").json()
    assert served["paths"] == schema.raw_schema["paths"]
    assert served["components"] == schema.raw_schema["components"]


@pytest.mark.slow
@schema.parametrize()
def test_api_contract(case, server):
    case.call_and_validate(base_url=server, headers=AUTH, excluded_checks=[positive_data_acceptance],
                           additional_checks=[valid_data_accepted])
