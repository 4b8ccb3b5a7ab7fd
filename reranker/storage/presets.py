"""Instruction presets: the built-in ones (given by the caller) and those users save, kept in the SQLite store."""

from __future__ import annotations

import time
from typing import Mapping

from reranker.errors import InputError
from reranker.storage.database import Database, with_tx

MAX_NAME_CHARS = 80


class PresetStore:
    """User-saved presets in table ``instruction_presets`` (migration 2 of ``reranker.storage.database``)."""

    def __init__(self, db: Database, built_in: Mapping[str, str]):
        self.db = db
        self.built_in = dict(built_in)

    def saved(self) -> dict[str, str]:
        """User presets by name, alphabetically."""
        rows = self.db.conn.execute("SELECT name, instruction FROM instruction_presets ORDER BY name COLLATE NOCASE")
        return dict(rows.fetchall())

    def all(self) -> dict[str, str]:
        """Built-in presets first, then the user's."""
        return {**self.built_in, **self.saved()}

    def save(self, name: str, instruction: str) -> bool:
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
            existed = conn.execute("SELECT 1 FROM instruction_presets WHERE name = ?", (name,)).fetchone()
            conn.execute(
                "INSERT INTO instruction_presets (name, instruction, created, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET instruction = excluded.instruction, updated = excluded.updated",
                (name, instruction.strip(), now, now),
            )
            return existed is not None

        return with_tx(conn, write)

    def delete(self, name: str) -> None:
        """Delete a user preset; built-in ones cannot be deleted."""
        if name in self.built_in:
            raise InputError(f"{name!r} is built in and cannot be deleted.")
        conn = self.db.conn
        sql = "DELETE FROM instruction_presets WHERE name = ?"
        deleted = with_tx(conn, lambda: conn.execute(sql, (name,)).rowcount)
        if not deleted:
            raise InputError(f"There is no saved preset named {name!r}.")
