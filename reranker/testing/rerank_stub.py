"""A local HTTP server speaking the Cohere rerank schema (``POST /v2/rerank``: ``{"model", "query",
"documents", "top_n"}`` -> ``{"id", "results": [{"index", "relevance_score"}], "meta"}``), for testing the
endpoint client without a network. Its relevance score is the share of the query's words found in the
document: a stand-in for a hosted model's scores, documented as such, that lets a test know the right answer.
It records every request (path, headers, body) and can require a key."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def overlap_score(query: str, document: str) -> float:
    """The share of the query's distinct words that occur in the document."""
    words = set(re.findall(r"\w+", query.lower()))
    return len(words & set(re.findall(r"\w+", document.lower()))) / len(words) if words else 0.0


class RerankStub:
    """Start with ``with RerankStub(api_key="k") as stub: stub.url``; bound to 127.0.0.1 on a free port."""

    def __init__(self, api_key: str | None = None):
        self.api_key = api_key
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if stub.api_key and self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                    return self._send(401, {"message": "invalid api token"})
                if not self.path.endswith("/rerank"):
                    return self._send(404, {"message": "not found"})
                documents = body.get("documents") or []
                results = sorted(({"index": i, "relevance_score": overlap_score(body["query"], d)}
                                  for i, d in enumerate(documents)), key=lambda r: -r["relevance_score"])
                top_n = body.get("top_n") or len(results)
                return self._send(200, {"id": "stub", "results": results[:top_n],
                                        "meta": {"billed_units": {"search_units": 1}}})

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2/rerank"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "RerankStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
