"""The server's signing secret, kept in a file next to its data so that what it signed (the ids anonymous visitors'
browsers hold) stays valid across restarts; made once, readable by the server's user only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from reranker.errors import RerankerError

SECRET_FILE = "server-secret.key"
SECRET_BYTES = 32


def load_or_create(folder: str | Path) -> bytes:
    """The secret stored in ``folder`` (created there, mode 0600, on first use)."""
    path = Path(folder) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) < SECRET_BYTES:
            raise RerankerError(f"The server secret {path} is damaged (shorter than {SECRET_BYTES} bytes): delete "
                                "it to make a new one (anonymous visitors then start afresh).")
        return secret
    secret = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret
