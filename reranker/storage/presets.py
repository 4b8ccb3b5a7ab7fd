"""Instruction presets: the built-in ones (given by the caller) and those users save, kept in the SQLite store."""

from __future__ import annotations

import time
from typing import Mapping

from reranker.errors import InputError
from reranker.storage.database import Database, with_tx

MAX_NAME_CHARS = 80


class PresetStore:
    """User-saved presets in table ``instruction_presets`` (migrations 2 and 4 of ``reranker.storage.database``).

    Each method reads and writes one owner's presets (``""``: the shared ones of a server without sign-in).
    """

    def __init__(self, db: Database, built_in: Mapping[str, str]):
        self.db = db
        self.built_in = dict(built_in)

    def saved(self, *, owner: str = "") -> dict[str, str]:
        """``owner``'s presets by name, alphabetically."""
        rows = self.db.conn.execute("SELECT name, instruction FROM instruction_presets WHERE owner = ? "
                                    "ORDER BY name COLLATE NOCASE", (owner,))
        return dict(rows.fetchall())

    def all(self, *, owner: str = "") -> dict[str, str]:
        """Built-in presets first, then ``owner``'s."""
        return {**self.built_in, **self.saved(owner=owner)}

    def save(self, name: str, instruction: str, *, owner: str = "") -> bool:
        """Save (or update) a preset; returns True when it replaced one of the same name."""
        name = " ".join((name or "").split())
        if not name:
            raise InputError("Give the preset a name before saving it.")
        if len(name) > MAX_NAME_CHARS:
            raise InputError(f"Preset names are limited to {MAX_NAME_CHARS} characters.")
        if name in self.built_in:
            raise InputError(f"{name!r} is a built-in preset; save yours under another name.")
        if not (instruction or "").strip():
            raise InputError("The instruction is empty: write it before saving it as a preset.")
        conn, now = self.db.conn, time.time()

        def write() -> bool:
            existed = conn.execute("SELECT 1 FROM instruction_presets WHERE owner = ? AND name = ?",
                                   (owner, name)).fetchone()
            conn.execute(
                "INSERT INTO instruction_presets (owner, name, instruction, created, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(owner, name) DO UPDATE SET instruction = excluded.instruction, updated = excluded.updated",
                (owner, name, instruction.strip(), now, now),
            )
            return existed is not None

        return with_tx(conn, write)

    def delete(self, name: str, *, owner: str = "") -> None:
        """Delete one of ``owner``'s presets; built-in ones cannot be deleted."""
        if name in self.built_in:
            raise InputError(f"{name!r} is built in and cannot be deleted.")
        conn = self.db.conn
        sql = "DELETE FROM instruction_presets WHERE owner = ? AND name = ?"
        deleted = with_tx(conn, lambda: conn.execute(sql, (owner, name)).rowcount)
        if not deleted:
            raise InputError(f"There is no saved preset named {name!r}.")
