"""Instruction presets persist in the SQLite store (migration 2) and protect the built-in ones."""

import pytest

from reranker.errors import InputError
from reranker.scoring.prompt import INSTRUCTION_PRESETS as BUILT_IN
from reranker.storage.presets import PresetStore
from reranker.storage.database import Database


def test_presets_persist_across_opens(tmp_path):
    path = tmp_path / "reranker.sqlite3"
    store = PresetStore(Database(path), BUILT_IN)
    assert store.save("  My   legal ", "Find clauses about liability") is False
    assert store.save("My legal", "Find liability clauses") is True
    reopened = PresetStore(Database(path), BUILT_IN)
    assert reopened.saved() == {"My legal": "Find liability clauses"}
    assert list(reopened.all())[: len(BUILT_IN)] == list(BUILT_IN)
    reopened.delete("My legal")
    assert PresetStore(Database(path), BUILT_IN).saved() == {}


@pytest.mark.parametrize("name, instruction, message", [
    ("", "x", "Give the preset a name"),
    ("Code search", "x", "built-in preset"),
    ("mine", "   ", "instruction is empty"),
    ("n" * 81, "x", "limited to 80"),
])
def test_bad_presets_are_refused(tmp_path, name, instruction, message):
    with pytest.raises(InputError, match=message):
        PresetStore(Database(tmp_path / "db.sqlite3"), BUILT_IN).save(name, instruction)


def test_delete_refuses_built_in_and_unknown(tmp_path):
    store = PresetStore(Database(tmp_path / "db.sqlite3"), BUILT_IN)
    with pytest.raises(InputError, match="built in"):
        store.delete("Code search")
    with pytest.raises(InputError, match="no saved preset"):
        store.delete("nope")
