"""Nothing replaced silently: ``ui.replacing.Undo`` keeps exactly what an action replaced and puts it back, with a
message each way; the sweep names pasted instructions by their text."""

from __future__ import annotations

import gradio as gr
import pytest

from reranker.ui import replacing
from reranker.ui.sweep_tab import instruction_choices


def undo_over(n: int) -> replacing.Undo:
    with gr.Blocks():
        components = [gr.Textbox() for _ in range(n)]
        return replacing.Undo(components, "Undo", elem_id="undo", what="inputs")


def test_undo_restores_exactly_what_was_replaced(monkeypatch):
    said = []
    monkeypatch.setattr(gr, "Info", said.append)
    undo = undo_over(4)
    before = ("my query", None, "a\n\n  b  \n", 0.25)
    *new, replaced, button = undo.replace(("q", "i", "d", 0.5), before, "Example loaded.")
    assert new == ["q", "i", "d", 0.5] and button["visible"] is True
    assert said[-1] == "Example loaded. Your previous inputs are kept: Undo puts them back."
    *back, state, hidden = replacing.Undo.restore(replaced)
    assert tuple(back) == before and state is None and hidden["visible"] is False
    assert said[-1] == "Your previous inputs are back."
    with pytest.raises(gr.Error):
        replacing.Undo.restore(None)
    with pytest.raises(ValueError):
        undo.replace(("q",), before, "wrong length")


def test_one_replaced_input_is_said_in_the_singular(monkeypatch):
    said = []
    monkeypatch.setattr(gr, "Info", said.append)
    undo_over(1).replace([0.7], [0.5], "Threshold set.")
    assert said[-1].endswith("is kept: Undo puts it back.")


def test_pasted_instructions_are_named_by_their_text():
    long = "Judge whether the passage is about the same topic as the query, whatever its style"
    names = instruction_choices({"Web search": "w"}, ["Web search"], f"{long}\n{long} too\nshort one\nshort one")
    shown = "“Judge whether the passage is about the same top…”"
    assert [name for name, _ in names] == ["Web search", shown, f"{shown} (2)", "“short one”"]
    assert [instruction for _, instruction in names][1:] == [long, long + " too", "short one"]
