"""Public demo and team server, through the running app: bounded engines, the allow-list, visitors kept apart,
signed-in identity (mocked at Gradio's OAuth boundary: the session cookie), and --auth / the API key."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app import read_users
from reranker.errors import InputError
from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore
from tests.support.app_process import app_process
from tests.support.app_server import pressed, serve
from tests.support.samples import DEMO_DOCS as DOCS, DEMO_QUERY as QUERY

KEY = "team-key-123"


def rank(client, model, max_length=512, backend="transformers"):
    return client.predict(QUERY, "", DOCS, "line", None, None, None, model, backend, max_length, 8, "rank", 0, 0, 0,
                          api_name="/rank")


def judge(client, rank_, label, note=""):
    return client.predict(rank_, label, note, "rank", 0, 0, 0, 0.5, False, api_name="/save_judgement")




# --- bounded engines and the allow-list (a real app.py process, so its memory can be measured) ---------------

def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_cycling_max_lengths_and_models_keeps_engines_and_memory_bounded(tiny_model, tmp_path):
    from reranker.testing.synthetic import build_model

    others = [str(build_model(tmp_path / f"m{i}", "tiny", seed=i + 1, max_position_embeddings=8192)) for i in range(2)]
    models = [tiny_model, *others]
    args = ["--model", tiny_model, "--backend", "transformers", "--max-length", "512", "--models", ",".join(models),
            "--max-engines", "2"]
    with app_process(args, tmp_path / "data", tmp_path / "app.log") as (url, process):
        client = Client(url, verbose=False)
        lengths = [128, 256, 384, 512, 1024, 2048]
        for model in models:  # warm-up: every model loaded (and released) once
            rank(client, model)
        warm = _rss_mb(process.pid)
        for i, max_length in enumerate(lengths):
            outputs = rank(client, models[(i + 1) % 3], max_length)
            assert f"max length {max_length:,}" in outputs[5]
            assert httpx.get(url + "health").json()["engines_loaded"] <= 2
        grown = _rss_mb(process.pid) - warm
        # 6 runs over 6 max lengths and 3 models: no engine per max length (each tiny engine is ~40 MB, its
        # tokenizer ~30 MB: ~420 MB if each length kept its own); what is left is allocator noise
        assert grown < 120, f"the server grew by {grown:.0f} MB"
        with pytest.raises(AppError, match="not offered on this server"):
            rank(client, "8B")
        with pytest.raises(AppError, match="not offered on this server"):
            rank(client, str(tmp_path))  # a folder the operator did not name


# --- two visitors of a public demo ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def public_app(tiny_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("public-data")
    with serve(tiny_model, "transformers", data, public=True, runs_per_minute=1000) as url:
        yield url, data


def test_public_visitors_cannot_see_export_overwrite_or_delete_each_others_data(public_app, tiny_model):
    url, data = public_app
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    rank(a, tiny_model)
    judge(a, 1, 2, note="A's note")
    a.predict("A's preset", "Given a question, find A's answer", api_name="/save_preset")

    table = rank(b, tiny_model)[0]
    assert pressed(table) == {} and "A&#x27;s note" not in table and "A's note" not in table
    with pytest.raises(AppError, match="no judgements to export"):
        b.predict("all", api_name="/export_judgements")
    with pytest.raises(AppError, match="has no judgement to delete"):
        b.predict(1, "rank", 0, 0, 0, 0.5, False, api_name="/delete_judgement")
    with pytest.raises(AppError, match="not in the list of choices|no saved preset named"):  # not even offered
        b.predict("A's preset", api_name="/delete_preset")
    table = judge(b, 1, 0, note="B's note")[0]  # B's own judgement of the same document
    assert pressed(table) == {1: 0}

    files = a.predict("all", api_name="/export_judgements")
    exported = Path(next(f for f in files if f.endswith(".jsonl"))).read_text()
    assert "A's note" in exported and "B's note" not in exported
    assert pressed(rank(a, tiny_model)[0]) == {1: 2}
    owners = AnnotationStore(Database(data / "reranker.sqlite3")).owners()
    assert len(owners) == 2 and all(o.startswith("session:") for o in owners)


def test_a_public_demo_offers_no_model_switching_and_limits_runs_per_visitor(tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=2) as url:
        client = Client(url, verbose=False)
        assert "/load" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        rank(client, tiny_model)
        rank(client, tiny_model)
        with pytest.raises(AppError, match=r"Busy: .* try again in \d+ s"):
            rank(client, tiny_model)
        # another visitor (another address, as a Space's proxy passes it on) is not held back
        rank(Client(url, verbose=False, headers={"X-Forwarded-For": "11.0.0.1"}), tiny_model)


# --- signed in with Hugging Face: identity from the session Gradio's OAuth keeps ---------------------------------

def _session_cookie(username: str) -> str:
    """The cookie Starlette's SessionMiddleware (installed by Gradio for gr.LoginButton) reads oauth_info from."""
    import itsdangerous
    from gradio import oauth

    secret = hashlib.sha256(((oauth.OAUTH_CLIENT_SECRET or "") + "-v4").encode()).hexdigest()
    info = {"access_token": "t", "scope": "openid profile", "expires_at": int(time.time()) + 3600,
            "userinfo": {"name": username.title(), "preferred_username": username, "picture": "",
                         "profile": f"https://huggingface.co/{username}"}}
    data = base64.b64encode(json.dumps({"oauth_info": info}).encode())
    return "session=" + itsdangerous.TimestampSigner(secret).sign(data).decode()


def test_signed_in_visitors_own_their_judgements_by_hugging_face_name(tiny_model, tmp_path, monkeypatch):
    from gradio import oauth

    # outside a Space Gradio mocks the login routes with the machine's HF account, which tests do not have
    monkeypatch.setattr(oauth, "_get_mocked_oauth_info", lambda: {})
    with serve(tiny_model, "transformers", tmp_path, public=True, sign_in=True, runs_per_minute=1000) as url:
        alice = Client(url, verbose=False, headers={"Cookie": _session_cookie("alice")})
        bob = Client(url, verbose=False, headers={"Cookie": _session_cookie("bob")})
        rank(alice, tiny_model)
        judge(alice, 2, 1, note="alice was here")
        assert pressed(rank(bob, tiny_model)[0]) == {}
        with pytest.raises(AppError, match="no judgements to export"):
            bob.predict("all", api_name="/export_judgements")
        again = Client(url, verbose=False, headers={"Cookie": _session_cookie("alice")})  # a new visit
        assert pressed(rank(again, tiny_model)[0]) == {2: 1}
    store = AnnotationStore(Database(tmp_path / "reranker.sqlite3"))
    assert store.owners() == ["hf:alice"] and store.all(owner="hf:alice")[0].note == "alice was here"


# --- a team server: --auth, and the API key -----------------------------------------------------------------------

def test_team_logins_are_required_and_judgements_record_who_made_them(tiny_model, tmp_path):
    users = [("ann", "pw-ann"), ("ben", "pw-ben")]
    with serve(tiny_model, "transformers", tmp_path, users=users, api_key=KEY) as url:
        assert httpx.get(url + "config").status_code == 401  # the page's configuration needs a login
        assert httpx.post(url + "login", data={"username": "ann", "password": "wrong"}).status_code == 400
        for auth in (None, ("ann", "wrong"), ("nobody", "pw-ann")):
            with pytest.raises(Exception):
                rank(Client(url, verbose=False, auth=auth), tiny_model)
        for headers in ({}, {"Authorization": "Bearer wrong"}):  # the REST API needs the key
            assert httpx.post(url + "v2/rerank", json={"query": QUERY, "documents": ["a"]},
                              headers=headers).status_code == 401
        assert httpx.post(url + "v2/rerank", json={"query": QUERY, "documents": ["a"]},
                          headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        ann, ben = Client(url, verbose=False, auth=users[0]), Client(url, verbose=False, auth=users[1])
        rank(ann, tiny_model)
        judge(ann, 1, 2)
        assert pressed(rank(ben, tiny_model)[0]) == {}  # ben judges as himself
        judge(ben, 1, 0)
    store = AnnotationStore(Database(tmp_path / "reranker.sqlite3"))
    assert store.owners() == ["ann", "ben"]
    assert [a.label for a in store.all(owner="ann")] == [2] and [a.label for a in store.all(owner="ben")] == [0]


def test_the_api_key_guards_the_page_and_the_gradio_api_of_a_private_server(tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path, api_key=KEY) as url:
        assert httpx.get(url + "config").status_code == 401
        assert httpx.get(url + "gradio_api/info").status_code == 401
        for auth in (None, ("me", "wrong")):
            with pytest.raises(Exception):
                rank(Client(url, verbose=False, auth=auth), tiny_model)
        assert "documents" in rank(Client(url, verbose=False, auth=("me", KEY)), tiny_model)[5]
        assert httpx.post(url + "v1/rerank", json={"query": QUERY, "documents": ["a"]}).status_code == 401


def test_users_come_from_flags_and_files_and_bad_entries_are_named(tmp_path):
    file = tmp_path / "users.txt"
    file.write_text("# the team\nann:pw:with:colons\n\nben:secret\n")
    assert read_users(["cy:x"], [str(file)]) == [("cy", "x"), ("ann", "pw:with:colons"), ("ben", "secret")]
    file.write_text("ann\n")
    with pytest.raises(InputError, match="users.txt line 1: write each user as NAME:PASSWORD"):
        read_users(None, [str(file)])
    with pytest.raises(InputError, match="Cannot read the users file"):
        read_users(None, [str(tmp_path / "missing.txt")])
