"""Inputs are what was uploaded: a file a request names must lie in Gradio's upload folder for this server.

A Gradio client sends a file input as ``{"path": ..., "meta": {"_type": "gradio.FileData"}}``, and may write any
path there (or a URL, which Gradio would fetch). ``UploadGuard`` refuses such a request before Gradio reads it;
``uploaded`` is the test, which the page's handlers repeat before they read a file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gradio import utils as gradio_utils
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)
NOT_UPLOADED = ("That file was not uploaded to this page: upload it with the file input (a path on the server "
                "or a URL is not accepted).")


def uploaded(path: str | Path) -> bool:
    """Whether ``path`` (resolved, links followed) is a file in Gradio's upload folder for this server."""
    try:
        resolved = Path(path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return False
    return resolved.is_file() and resolved.is_relative_to(Path(gradio_utils.get_upload_folder()).resolve())


def foreign_file(value: Any) -> str | None:
    """The first file ``value`` names (a Gradio FileData, at any depth) that was not uploaded, or None."""
    if isinstance(value, dict):
        meta = value.get("meta")
        if isinstance(meta, dict) and meta.get("_type") == "gradio.FileData":
            path = value.get("path")
            return None if isinstance(path, str) and uploaded(path) else str(path)
        values = value.values()
    elif isinstance(value, list):
        values = value
    else:
        return None
    return next((found for found in map(foreign_file, values) if found is not None), None)


class UploadGuard:
    """ASGI middleware: a JSON request to the Gradio API (``prefix``) that names a file not uploaded to this server
    is answered 400 with ``NOT_UPLOADED`` (and one log line), before Gradio reads anything."""

    def __init__(self, app, prefix: str = "/gradio_api/"):
        self.app, self.prefix = app, prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.prefix) \
                or scope["path"].rstrip("/").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client left: let the app see it
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            foreign = foreign_file(json.loads(body))
        except ValueError:  # not JSON: Gradio answers it
            foreign = None
        if foreign is not None:
            log.info("refused %s naming a file that was not uploaded: %.200r", scope["path"], foreign)
            await JSONResponse({"detail": NOT_UPLOADED, "error": NOT_UPLOADED}, status_code=400)(scope, receive, send)
            return
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
