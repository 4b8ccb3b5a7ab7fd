"""A public demo probed as an attacker would (issue 23): no file input reads a server file, the sweep tab keeps
visitors apart, the run limits hold against a client that mints sessions, the REST API refuses beyond its
bounds, logins are throttled, and refusals come before any model loads and log one line."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app import create_server
from reranker.storage.judgements import document_hash
from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.serve.limits import client_address
from reranker.storage import server_secret
from reranker.storage.database import Database
from reranker.storage.presets import PresetStore
from reranker.scoring.prompt import INSTRUCTION_PRESETS
from reranker.ui import common
from reranker.ui.visitors import Visitors
from tests.support.app_process import app_process
from tests.support.app_server import run, serve

QUERY = "what causes the northern lights?"
DOCS = "Auroras come from solar particles.\nBanana bread recipe\nMagnetic storms and auroral ovals"
SECRET = "PLANTED-SERVER-SECRET-7f3a"
SUFFIXES = [".txt", ".md", ".csv", ".tsv", ".json", ".jsonl"]


def rank(client, model, docs=DOCS, upload=None):
    return client.predict(QUERY, "", docs, "line", upload, None, None, model, "transformers", 512, 8, "rank", 0, 0,
                          0, 0.5, False, api_name="/rank")


def sweep(client, model, *, source="store", table=None, chosen=("Web search (default)",), pasted="", models=""):
    return client.predict(source, table, None, None, None, list(chosen), pasted, models, "", None, "BM25", 10, 1,
                          "student", model, "transformers", 512, 8, api_name="/sweep")


# --- 1. file inputs: only what was uploaded ----------------------------------------------------------------------

def _planted(folder: Path) -> dict[str, Path]:
    """A secret file of each readable kind, outside Gradio's upload folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {".txt": f"{SECRET} one\n{SECRET} two\n", ".md": f"{SECRET} one\n\n{SECRET} two\n",
            ".csv": f"query,document,label\n{QUERY},{SECRET},1\n",
            ".tsv": f"query\tdocument\tlabel\n{QUERY}\t{SECRET}\t1\n",
            ".json": json.dumps([{"text": SECRET, "query": QUERY, "document": SECRET, "label": 1}]),
            ".jsonl": json.dumps({"text": SECRET, "query": QUERY, "document": SECRET, "label": 1}) + "\n"}
    files = {}
    for suffix, text in rows.items():
        files[suffix] = folder / f"secret{suffix}"
        files[suffix].write_text(text, encoding="utf-8")
    return files


def _spellings(path: Path) -> list[str]:
    """One server file written every way a client might: plain, with /./, climbing with ../, through /proc."""
    text = str(path)
    return [text, text.replace("/", "/./", 2), "../" * 12 + text.lstrip("/"), "/proc/self/root" + text]


def _call(url: str, name: str, data: list) -> str:
    """The raw event stream of one call of ``name`` (what a client that writes its own requests sees)."""
    posted = httpx.post(f"{url}gradio_api/call/{name.lstrip('/')}", json={"data": data}, timeout=30)
    if posted.status_code == 400:  # refused before Gradio read the request
        return "event: error\n" + posted.text
    posted.raise_for_status()
    event = posted.json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{name.lstrip('/')}/{event}", timeout=60).text


def test_no_file_input_of_any_event_reads_a_server_file(tiny_model, tmp_path):
    planted = _planted(tmp_path / "srv")
    attempts = [(spelling, suffix) for suffix, path in planted.items() for spelling in _spellings(path)]
    attempts.append(("/proc/self/cwd/README.md", ".md"))  # the server's own files, relative to where it runs
    readme = Path("README.md").read_text(encoding="utf-8").splitlines()[0]
    with serve(tiny_model, "transformers", tmp_path / "data", public=True, runs_per_minute=100_000) as url:
        api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
        with_files = {name: [i for i, p in enumerate(spec["parameters"]) if p["component"] in ("File", "UploadButton")]
                      for name, spec in api.items()}
        with_files = {name: slots for name, slots in with_files.items() if slots}
        # every event the page has that takes a file is here, so a new one is probed too
        expected = {"/rank", "/inspect_upload", "/compare", "/import_judgements", "/multi_query", "/sweep"}
        assert expected <= set(with_files)
        attempts.append((f"{url}gradio_api/info", ".json"))  # a URL: the server would fetch it
        for name, slots in with_files.items():
            base = []
            for p in api[name]["parameters"]:
                value = p["parameter_default"] if p["parameter_has_default"] else p["example_input"]
                base.append(None if p["component"] in ("File", "UploadButton") else value)
            for slot in slots:
                for path, suffix in attempts:
                    data = list(base)
                    data[slot] = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": f"x{suffix}"}
                    stream = _call(url, name, data)
                    where = f"{name} parameter {slot} = {path}"
                    assert SECRET not in stream and readme not in stream, f"{where} read the file"
                    assert "event: error" in stream and "not uploaded" in stream, f"{where}: {stream[-400:]}"

        # the probe can see a read: the same file, uploaded, is ranked
        table = rank(Client(url, verbose=False), tiny_model, docs="", upload=handle_file(str(planted[".txt"])))[0]
        assert SECRET in table


def test_an_upload_path_must_lie_in_gradios_upload_folder(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET)
    folder = Path(gr.utils.get_upload_folder())
    folder.mkdir(parents=True, exist_ok=True)
    inside = folder / f"test-security-{os.getpid()}.txt"
    link = folder / f"test-security-link-{os.getpid()}.txt"
    try:
        inside.write_text("uploaded")
        link.symlink_to(outside)  # a link in the upload folder to a file outside it: followed, refused
        assert common.upload_path(str(inside)) == str(inside)
        assert common.upload_path({"path": str(inside)}) == str(inside)
        for path in (str(outside), str(link), str(folder / ".." / outside.name), str(folder)):
            with pytest.raises(Exception, match="not uploaded to this page"):
                common.upload_path(path)
    finally:
        inside.unlink(missing_ok=True)
        link.unlink(missing_ok=True)


def test_gradios_own_upload_check_runs_for_the_mounted_app(tiny_model, tmp_path):
    from gradio import processing_utils
    from gradio.context import LocalContext
    from gradio.exceptions import InvalidPathError

    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=str(tmp_path))  # nothing loaded
    server = create_server(holder, data_dir=tmp_path, public=True)
    blocks = next(route.app.get_blocks() for route in server.routes if hasattr(getattr(route, "app", None),
                                                                                "get_blocks"))
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    token = LocalContext.blocks.set(blocks)
    try:
        with pytest.raises(InvalidPathError, match="not uploaded by a user"):
            processing_utils._check_allowed(str(secret), check_in_upload_folder=True)
    finally:
        LocalContext.blocks.reset(token)


# --- 3. the sweep tab: each visitor's own store, presets and winners ---------------------------------------------

def test_the_sweep_tab_reads_and_writes_only_the_visitors_own_data(tiny_model, tmp_path):
    data = tmp_path / "data"
    with serve(tiny_model, "transformers", data, public=True, runs_per_minute=100_000) as url:
        a, b = Client(url, verbose=False), Client(url, verbose=False)
        rank(a, tiny_model)
        a.predict(1, 2, "", "rank", 0, 0, 0, 0.5, False, api_name="/save_judgement")
        a.predict(2, 0, "", "rank", 0, 0, 0, 0.5, False, api_name="/save_judgement")
        a.predict("A's preset", "A-SECRET-INSTRUCTION", api_name="/save_preset")

        with pytest.raises(AppError, match="judgements store is empty"):  # not A's judgements
            sweep(b, tiny_model)
        with pytest.raises(AppError, match="not in the list of choices|Unknown preset"):  # not A's preset
            sweep(b, tiny_model, source="store", chosen=["A's preset"])
        summary = sweep(a, tiny_model, chosen=[], pasted="A-SECRET-INSTRUCTION")[0]  # A's own judgements
        assert "1 variant(s)** × **1 queries" in summary
        a.predict("Winner", api_name="/sweep_save_winner")

        rank(b, tiny_model, docs="Solar wind\nA recipe for soup")
        b.predict(1, 2, "", "rank", 0, 0, 0, 0.5, False, api_name="/save_judgement")
        b_summary = sweep(b, tiny_model, pasted="B's own wording")[0]
        assert "2 variant(s)** × **1 queries" in b_summary
        b.predict("Winner", api_name="/sweep_save_winner")  # the same name: B's own preset, A's untouched
        config = httpx.get(url + "config").text
    presets = PresetStore(Database(data / "reranker.sqlite3"), INSTRUCTION_PRESETS)
    rows = presets.db.conn.execute("SELECT owner, name, instruction FROM instruction_presets ORDER BY created")
    saved = [(owner, name, instruction) for owner, name, instruction in rows]
    a_owner, b_owner = dict.fromkeys(owner for owner, _, _ in saved)
    assert a_owner.startswith("session:") and b_owner.startswith("session:")
    assert presets.saved(owner=a_owner) == {"A's preset": "A-SECRET-INSTRUCTION", "Winner": "A-SECRET-INSTRUCTION"}
    assert presets.saved(owner=b_owner) == {"Winner": presets.saved(owner=b_owner)["Winner"]}
    assert presets.saved(owner=b_owner)["Winner"] != "A-SECRET-INSTRUCTION" and presets.saved(owner="") == {}
    assert "A's preset" not in config and "Winner" not in config and "A-SECRET-INSTRUCTION" not in config


# --- 4. limits a client cannot mint its way around -----------------------------------------------------------------

def test_a_new_session_per_run_does_not_escape_the_limit_but_another_address_is_not_held_back(tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=2) as url:
        rank(Client(url, verbose=False), tiny_model)
        rank(Client(url, verbose=False), tiny_model)
        with pytest.raises(AppError, match=r"Busy: .* try again in \d+ s"):
            rank(Client(url, verbose=False), tiny_model)  # a fresh session hash: still the same client
        # a visitor at another address (as a Space's proxy passes it on) is not held back
        rank(Client(url, verbose=False, headers={"X-Forwarded-For": "11.0.0.2"}), tiny_model)


def test_explain_and_sweep_count_against_the_visitors_limit(tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=2) as url:
        client = Client(url, verbose=False, headers={"X-Forwarded-For": "11.0.0.3"})
        rank(client, tiny_model)
        client.predict(1, ["occlusion"], 8, api_name="/explain")
        with pytest.raises(AppError, match="Busy"):
            client.predict(1, ["occlusion"], 8, api_name="/explain")
        sweeper = Client(url, verbose=False, headers={"X-Forwarded-For": "11.0.0.4"})
        for _ in range(2):  # runs admitted (and answered: this visitor has judged nothing yet)
            with pytest.raises(AppError, match="judgements store is empty"):
                sweep(sweeper, tiny_model)
        with pytest.raises(AppError, match="Busy"):
            sweep(sweeper, tiny_model)


def test_rest_requests_are_limited_per_client_in_public_mode(tiny_model, tmp_path):
    body = {"query": QUERY, "documents": ["auroras", "bread"]}
    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=3) as url:
        answers = [httpx.post(url + "v2/rerank", json=body, timeout=60) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert int(answers[-1].headers["Retry-After"]) >= 1 and "a minute" in answers[-1].json()["message"]
        assert httpx.post(url + "v1/explain", json=body).status_code == 429  # explain counts too
        assert httpx.post(url + "v2/rerank", json=body, headers={"X-Forwarded-For": "11.0.0.5"}).status_code == 200


def test_rest_requests_beyond_the_bound_in_flight_are_refused_not_queued(tiny_model, tmp_path):
    body = {"query": QUERY, "documents": ["auroras", "bread"]}
    with serve(tiny_model, "transformers", tmp_path, max_in_flight=1) as url:
        # one request holds the only place in flight while its body arrives; the next is refused, not queued
        release, results = threading.Event(), []

        def slow_body():
            yield b'{"query": "q", '
            release.wait(30)
            yield b'"documents": ["a"]}'

        slow = threading.Thread(target=lambda: results.append(httpx.post(
            url + "v2/rerank", content=slow_body(), headers={"Content-Type": "application/json",
                                                             "X-Forwarded-For": "11.0.0.6"}, timeout=60)))
        slow.start()
        try:
            deadline = time.time() + 20
            while httpx.get(url + "health").json()["in_flight"] < 1:
                assert time.time() < deadline, "the slow request was never admitted"
                time.sleep(0.05)
            refused = httpx.post(url + "v2/rerank", json=body, headers={"X-Forwarded-For": "11.0.0.7"})
            assert refused.status_code == 503 and refused.headers["Retry-After"]
            assert refused.json()["status"] == "busy"
        finally:
            release.set()
            slow.join(60)
        assert results[0].status_code == 200


def test_the_client_address_believes_only_what_the_proxies_appended(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert client_address({}, "203.0.113.9") == "203.0.113.9"
    # a direct client (public or on a private network) cannot claim another address
    assert client_address({"x-forwarded-for": "11.0.0.1"}, "8.8.8.8") == "8.8.8.8"
    assert client_address({"x-forwarded-for": "11.0.0.1"}, "192.168.1.7") == "192.168.1.7"
    # behind a proxy (on a Space: its private proxies; anywhere: one on this machine): the last public hop,
    # whatever the client wrote before it
    monkeypatch.setenv("SPACE_ID", "someone/demo")
    assert client_address({"x-forwarded-for": "11.0.0.1, 12.0.0.2"}, "10.0.0.1") == "12.0.0.2"
    assert client_address({"x-forwarded-for": "12.0.0.2, 10.1.1.1"}, "127.0.0.1") == "12.0.0.2"
    assert client_address({"x-forwarded-for": "garbage"}, "127.0.0.1") == "127.0.0.1"


def test_signed_browser_ids_survive_a_restart_and_forged_ones_are_replaced(tmp_path):
    secret = server_secret.load_or_create(tmp_path)
    assert server_secret.load_or_create(tmp_path) == secret and len(secret) == 32
    assert (tmp_path / server_secret.SECRET_FILE).stat().st_mode & 0o077 == 0
    first, restarted = Visitors(public=True, secret=secret), Visitors(public=True, secret=secret)
    token = first.new_token()
    assert restarted.verify(token) == token.split(".")[0]  # the same secret after a restart
    visitor_id, signature = token.split(".")
    for forged in (f"{visitor_id}x.{signature}", f"other.{signature}", visitor_id, "", None, 42, "a.b.c"):
        assert restarted.verify(forged) is None
    assert Visitors(public=True).verify(token) is None  # another server's secret

    class Request:
        def __init__(self, session):
            self.session_hash, self.username, self.client, self.headers = session, None, None, {}

    kept = restarted.arrive(token, Request("s1"))
    assert kept == token and restarted.owner(Request("s1")) == f"browser:{visitor_id}"
    minted = restarted.arrive(f"{visitor_id}.{'0' * 32}", Request("s2"))  # a forged id: a new one instead
    assert minted != token and restarted.owner(Request("s2")) == f"browser:{restarted.verify(minted)}"
    assert restarted.owner(Request("s3")) == "session:s3"  # a client that holds no id: its session


# --- 5. logins, escaping, refusals before loading, one log line --------------------------------------------------

def test_failed_logins_are_throttled_per_client_address(tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path, users=[("ann", "pw-ann")]) as url:
        for _ in range(5):
            assert httpx.post(url + "login", data={"username": "ann", "password": "wrong"}).status_code == 400
        throttled = httpx.post(url + "login", data={"username": "ann", "password": "pw-ann"})
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        other = httpx.post(url + "login", data={"username": "ann", "password": "pw-ann"},
                           headers={"X-Forwarded-For": "11.0.0.8"})
        assert other.status_code == 200


def test_an_unknown_judgement_action_is_shown_as_text(monkeypatch):
    from reranker.ui import judging_tab
    from reranker.view.results_table import query_key

    class Store:
        def get(self, *args, **kwargs):
            return None

    class Row:
        rank, text = 1, "a document"

    class Result:
        rows, query = [Row()], QUERY

    class Ranking:
        result = Result()

    class Event:
        _data = {"action": "<img src=x onerror=alert(1)>", "doc": document_hash("a document"),
                 "query": query_key(QUERY), "seq": 1}

    toasts = []
    monkeypatch.setattr(judging_tab.gr, "Warning", toasts.append)
    annotator = judging_tab.Annotator(Store(), Path("."), Visitors())
    update = annotator.judge(Ranking(), None, evt=Event())[0]
    assert update["ack"]["ok"] is False and update["ack"]["label"] is None
    assert len(toasts) == 1 and "<img" not in toasts[0] and "&lt;img" in toasts[0]


def test_a_comparison_with_a_model_not_offered_is_refused_before_either_side_loads(tiny_model, tmp_path):
    from reranker.testing.synthetic import build_model

    other = str(build_model(tmp_path / "other", "tiny", seed=3, max_position_embeddings=8192))
    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=str(tmp_path), models=[other],
                         backends=["transformers"])
    holder.get()
    with run(create_server(holder, data_dir=tmp_path, public=True, runs_per_minute=100)) as url:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="not offered on this server"):
            client.predict(QUERY, DOCS, "line", None, None, None, "transformers", 8, "", other, 512, "", "8B", 512,
                           10, 1, 0.5, api_name="/compare")
        with pytest.raises(AppError, match="not offered on this server"):
            sweep(client, tiny_model, pasted="x", models=f"{other},8B")
    assert holder.state(ModelSettings(other, "transformers", 512))[0] == "not loaded"


def test_a_refused_run_logs_one_line_not_a_traceback(tiny_model, tmp_path, capfd, caplog):
    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=1) as url:
        client = Client(url, verbose=False, headers={"X-Forwarded-For": "11.0.0.9"})
        rank(client, tiny_model)
        capfd.readouterr()
        with caplog.at_level(logging.INFO, logger="reranker.ui"):
            with pytest.raises(AppError, match="Busy"):
                rank(client, tiny_model)
            with pytest.raises(AppError, match="not offered on this server"):
                rank(Client(url, verbose=False, headers={"X-Forwarded-For": "11.0.0.10"}), "8B")
        assert "Traceback" not in capfd.readouterr().err
    refused = [r.getMessage() for r in caplog.records
               if r.name.startswith("reranker.ui") and "refused" in r.getMessage()]
    assert len(refused) == 2 and not any("\n" in line for line in refused), refused


# --- 2. visitor state holds settings, not engines ----------------------------------------------------------------

def test_no_visitor_state_holds_an_engine_after_a_sweep(tiny_model, tmp_path):
    import gc
    import types

    from reranker.scoring.engine import Reranker
    from reranker.ui.sweep_tab import SweepState

    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=str(tmp_path))
    holder.get()
    server = create_server(holder, data_dir=tmp_path, public=True, runs_per_minute=100)
    blocks = next(route.app.get_blocks() for route in server.routes if hasattr(getattr(route, "app", None),
                                                                                "get_blocks"))
    with run(server) as url:
        client = Client(url, verbose=False)
        table = tmp_path / "judged.csv"
        table.write_text(f"query,document,label\n{QUERY},auroras,2\n{QUERY},bread,0\n", encoding="utf-8")
        summary = sweep(client, tiny_model, source="table", table=handle_file(str(table)),
                        pasted="Find passages about the sky")[0]
        assert "2 variant(s)" in summary
        states = [value for session in list(blocks.state_holder.session_data.values())
                  for value in session.state_data.values()]
    assert any(isinstance(v, SweepState) for v in states)  # the sweep's state is among them
    skip = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)
    seen, queue, found = set(), list(states), []
    while queue and len(seen) < 500_000:
        item = queue.pop()
        if id(item) in seen or isinstance(item, skip):
            continue
        seen.add(id(item))
        if isinstance(item, Reranker) or type(item).__module__.startswith("reranker.scoring.backends"):
            found.append(type(item).__name__)
            continue
        queue.extend(gc.get_referents(item))
    assert not found, f"visitor state holds {found}"


@pytest.mark.slow  # an app.py process, 12 model loads
def test_visitor_sessions_sweeping_more_models_than_max_engines_keep_memory_bounded(tiny_model, tmp_path):
    import psutil

    from reranker.testing.synthetic import build_model

    others = [str(build_model(tmp_path / f"m{i}", "tiny", seed=i + 1, max_position_embeddings=8192)) for i in range(2)]
    models = ",".join([tiny_model, *others])
    table = tmp_path / "judged.csv"
    table.write_text("query,document,label\n" + "".join(
        f"{q},{d},{label}\n" for q in ("northern lights", "banana bread") for d, label in
        (("auroras and solar wind", 2), ("a recipe", 0), ("magnetic storms", 1))), encoding="utf-8")
    args = ["--model", tiny_model, "--backend", "transformers", "--max-length", "512", "--models", models,
            "--max-engines", "2", "--public", "--runs-per-minute", "1000"]
    with app_process(args, tmp_path / "data", tmp_path / "app.log") as (url, process):

        def one_visitor_sweeps():
            client = Client(url, verbose=False)  # a new visitor session, with its own state
            summary = sweep(client, tiny_model, source="table", table=handle_file(str(table)), chosen=[],
                            pasted="Given a query, find relevant passages", models=models)[0]
            assert "3 variant(s)" in summary
            assert httpx.get(url + "health").json()["engines_loaded"] <= 2

        # warm-up: every model loaded and released once (a second round never grew the server: -40 to 0 MB here)
        one_visitor_sweeps()
        warm = psutil.Process(process.pid).memory_info().rss
        for _ in range(3):
            one_visitor_sweeps()
        grown = (psutil.Process(process.pid).memory_info().rss - warm) / 2**20
        print(f"RSS warm {warm / 2**20:.0f} MB, grown {grown:.0f} MB over 3 visitor sessions")
        # a session that kept its sweep's engines held ~150 MB each (issue 23): 3 of them would be ~450 MB; the
        # noise over sessions that keep nothing was -8 to +43 MB here
        assert grown < 150, f"the server grew by {grown:.0f} MB over 3 visitor sessions"


def test_the_prompt_of_a_row_never_loads_a_released_model_on_a_public_demo(tiny_model, tmp_path):
    """A visitor's old ranking names a model released since: showing its prompt would load it again outside the
    visitor's run limit, so the public demo says to run again; a private server loads it."""
    from reranker.files.documents import collect
    from reranker.ranking import inspection
    from reranker.storage.judgements import AnnotationStore
    from reranker.testing.synthetic import build_model
    from reranker.ui.common import Ranking
    from reranker.ui.inspector import Inspector

    other = str(build_model(tmp_path / "other", "tiny", seed=3, max_position_embeddings=8192))
    for public in (True, False):
        holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=False, models=[other],
                             max_models=1, check_at_load=False)
        db = Database(tmp_path / f"data-{public}.sqlite3")
        inspector = Inspector(holder, PresetStore(db, {}), max_documents=10, annotations=AnnotationStore(db),
                              visitors=Visitors(public=public))
        ranking = Ranking(inspection.run(holder.get(), "auroras", None, collect("aurora\nbread", "line")),
                          holder.default)
        assert "rr-prompt-doc" in inspector.inspect_row(ranking, 1)
        holder.get(ModelSettings(other, "transformers", 512))  # the visitor's model is released to load this one
        assert holder.state(holder.default)[0] == "not loaded"
        if public:
            with pytest.raises(gr.Error, match="released to make room for another one: run again"):
                inspector.inspect_row(ranking, 1)
            assert holder.state(holder.default)[0] == "not loaded"
        else:
            assert "rr-prompt-doc" in inspector.inspect_row(ranking, 1)
