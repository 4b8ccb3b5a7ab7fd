"""The running inspector driven through gradio_client on the tiny model: paste, upload, run, export, inspect."""

import signal
import time

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from reranker.ranking import export
from reranker.errors import InputError
from reranker.ui.common import error as _error
from tests.support.app_process import app_process
from tests.support.app_server import serve

QUERY = "what causes the northern lights?"
PASTED = "Auroras come from solar particles.\nBanana bread recipe\n<img src=x onerror=alert(1)>"
CSV_ROWS = [("c1", "Tromsø, Norway: northern lights in winter"), ("c2", "Lighthouses; guiding ships"),
            ("c3", "Magnetic storms and auroral ovals")]


@pytest.fixture(scope="module")
def transformers_app(tiny_model, tmp_path_factory):
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("app-data")) as url:
        yield url


@pytest.fixture
def csv_upload(tmp_path):
    path = tmp_path / "docs.csv"  # a BOM and semicolons, as spreadsheets in many locales write them
    path.write_bytes(("\ufeffid;text\n" + "".join(f'{i};"{t}"\n' for i, t in CSV_ROWS)).encode("utf-8"))
    return path


def rank(client, model, backend, query=QUERY, pasted=PASTED, upload=None, top_k=0):
    return client.predict(query, "", pasted, "line", handle_file(str(upload)) if upload else None, "text", "id",
                          model, backend, 512, 2, "rank", 0, 0, top_k, api_name="/rank")


def check_against_engine(outputs, reranker):
    table, _chart, rows, csv_file, json_file, summary, status, _status_in_settings, header, prompt = outputs
    assert "<b>6 documents ranked</b> in" in header and "float32" in header
    settings, frame = export.read_csv(csv_file)
    texts = PASTED.split("\n") + [t for _, t in CSV_ROWS]
    engine = reranker.rank(QUERY, texts)
    assert frame["index"].tolist() == [j.index for j in engine]
    assert frame["score"].tolist() == pytest.approx([j.score for j in engine], abs=1e-5)
    assert set(frame["id"]) == {"p1", "p2", "p3", "c1", "c2", "c3"}
    assert settings["query"] == QUERY and settings["max_length"] == 512 and settings["model"] == reranker.model
    assert "&lt;img src=x onerror=alert(1)&gt;" in table and "<img" not in table
    assert "6 documents" in summary and "loaded" in status
    # the prompt of the row the run chose, in the same update (never left to a second event that may read the
    # row choice from before the run)
    assert rows["value"] == frame["rank"].iloc[0] == 1
    first = frame["text"].iloc[0].replace("<", "&lt;").replace(">", "&gt;")
    assert "prompt tokens of max_length 512" in prompt and first in prompt
    return frame


def test_paste_upload_run_export(transformers_app, tiny_model, hf_reranker, csv_upload, tmp_path):
    client = Client(transformers_app, verbose=False)
    frame = check_against_engine(rank(client, tiny_model, "transformers", upload=csv_upload), hf_reranker)
    # the row inspector shows the exact prompt of the chosen row, from this session's state
    prompt = client.predict(2, api_name="/inspect_row")
    second = frame["text"][1]
    assert "prompt tokens of max_length 512" in prompt and "&lt;Query&gt;: what causes the northern lights?" in prompt
    assert second.replace("<", "&lt;").replace(">", "&gt;") in prompt


def test_top_k_limits_table_and_export(transformers_app, tiny_model):
    outputs = Client(transformers_app, verbose=False).predict(
        QUERY, "", PASTED, "line", None, None, None, tiny_model, "transformers", 512, 8, "rank", 0, 0, 2,
        api_name="/rank")
    _, frame = export.read_csv(outputs[3])
    assert frame["rank"].tolist() == [1, 2] and "2 of 3 documents" in outputs[0]


@pytest.mark.parametrize("query, pasted, upload_bytes, message", [
    ("", "a doc", None, "query is empty"),
    ("q", "", None, "no documents to rank"),
    ("q", "", b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image, not text"),
    ("q", "\n".join(map(str, range(10_000))), None, "10,000 documents is more than"),
])
def test_bad_input_gets_a_clear_message(transformers_app, tiny_model, tmp_path, query, pasted, upload_bytes, message):
    upload = None
    if upload_bytes:
        upload = tmp_path / "picture.txt"
        upload.write_bytes(upload_bytes)
    with pytest.raises(AppError, match=message):
        rank(Client(transformers_app, verbose=False), tiny_model, "transformers", query, pasted, upload)


def test_concurrent_users_are_queued_not_crashed(transformers_app, tiny_model):
    clients = [Client(transformers_app, verbose=False) for _ in range(3)]
    jobs = [c.submit(QUERY, "", PASTED, "line", None, None, None, tiny_model, "transformers", 512, 1, "rank", 0, 0, 0,
                     api_name="/rank") for c in clients]
    frames = [export.read_csv(job.result(timeout=120)[3])[1] for job in jobs]
    assert all(f["index"].tolist() == frames[0]["index"].tolist() for f in frames)


@pytest.mark.slow
def test_vllm_backend_end_to_end(tiny_model, vllm_reranker, csv_upload, tmp_path):
    with serve(tiny_model, "vllm", tmp_path / "data") as url:
        outputs = rank(Client(url, verbose=False), tiny_model, "vllm", upload=csv_upload)
    check_against_engine(outputs, vllm_reranker)
    assert "on vllm" in outputs[5]


def test_a_model_that_cannot_load_is_a_message(tiny_model, transformers_app, tmp_path):
    client = Client(transformers_app, verbose=False)
    with pytest.raises(AppError, match="not offered on this server"):  # not on the operator's list
        rank(client, str(tmp_path / "no-such-model"), "transformers")
    with serve(tiny_model, "transformers", tmp_path / "data", models=[str(tmp_path / "no-such-model")]) as url:
        with pytest.raises(AppError, match="Cannot load model"):  # on the list, but not there
            rank(Client(url, verbose=False), str(tmp_path / "no-such-model"), "transformers")


def test_preset_saved_through_the_page_survives_a_restart(tiny_model, tmp_path):
    for attempt in range(2):
        with serve(tiny_model, "transformers", tmp_path) as url:
            client = Client(url, verbose=False)
            if attempt == 0:
                update = client.predict("Support tickets", "Given a support ticket, find the fix", api_name="/save_preset")
                assert update[0]["value"] == "Support tickets"
            else:  # a new server on the same data folder offers the saved preset
                with pytest.raises(AppError, match="built in and cannot be deleted"):
                    client.predict("Code search", api_name="/delete_preset")
                update = client.predict("Support tickets", api_name="/delete_preset")
                assert "Support tickets" not in [c[0] for c in update["choices"]]


def test_messages_quoting_user_text_are_escaped():
    assert _error(InputError("no column '<img src=x>'")).message == "no column '&lt;img src=x&gt;'"


def test_python_app_py_serves_the_model_named_by_the_environment(tiny_model, tmp_path):
    env = {"RERANKER_MODEL": tiny_model, "RERANKER_BACKEND": "transformers"}
    with app_process(["--max-length", "512"], tmp_path, tmp_path / "app.log", env=env) as (url, process):
        assert tiny_model in httpx.get(url + "config").text  # the model dropdown defaults to $RERANKER_MODEL
        client = Client(url, verbose=False)
        outputs = client.predict(QUERY, "", PASTED, "line", None, None, None, tiny_model, "transformers", 512, 8,
                                 "rank", 0, 0, 0, api_name="/rank")
        assert f"`{tiny_model}` on transformers" in outputs[5]
        # SIGTERM (docker stop) with a client's stream still open: the app stops in seconds, releasing its engines
        started = time.monotonic()
        process.terminate()
        assert process.wait(timeout=20) == 128 + signal.SIGTERM
        print(f"app.py stopped {time.monotonic() - started:.1f} s after SIGTERM")
    assert "released a transformers engine" in (tmp_path / "app.log").read_text()
