"""Handlers take typed inputs (``ui.common.bind``/``Fields``) while the events' API keeps one named parameter per
component; state is typed; the status timer follows the model's state, not the text it shows."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio.utils import get_positional_input_parameters

from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.ui.common import DocumentInputs, Fields, ModelInputs, ViewInputs, bind
from reranker.ui.inspector import Inspector


def test_bind_passes_typed_inputs_and_keeps_flat_named_api_parameters():
    seen = []

    def handler(query, docs: DocumentInputs, view: ViewInputs, progress=gr.Progress()):
        seen.append((query, docs, view, progress))
        return "ok"

    with gr.Blocks():
        query = gr.Textbox()
        docs = {name: gr.Textbox() for name in ("pasted", "mode", "upload", "text_column", "id_column")}
        view = {name: gr.Textbox() for name in ("sort", "min_score", "min_confidence", "top_k", "threshold", "only")}
        # the field names choose the components, whatever order they are given in
        bound = bind(handler, query, Fields(DocumentInputs, **dict(reversed(docs.items()))), Fields(ViewInputs, **view))
    assert bound.inputs == [query, *docs.values(), *view.values()]
    assert [p.name for p in get_positional_input_parameters(bound)] == [
        "query", "pasted", "mode", "upload", "text_column", "id_column", "sort", "min_score", "min_confidence",
        "top_k", "threshold", "only"]  # gr.Progress is Gradio's, not an input
    parameters = [p for p in get_positional_input_parameters(bound)]
    assert [p.name for p in parameters if p.default is not p.empty] == ["threshold", "only"]  # the fields' defaults
    marker = object()
    assert bound("q", "a\nb", "line", None, "text", None, "rank", 0, 0.5, 3, 0.4, True, marker) == "ok"
    assert seen == [("q", DocumentInputs("a\nb", "line", None, "text", None), ViewInputs("rank", 0, 0.5, 3, 0.4, True),
                     marker)]


def test_bind_refuses_a_clash_and_fields_refuse_a_missing_component():
    def handler(model, settings: ModelInputs):
        return None

    with gr.Blocks():
        boxes = [gr.Textbox() for _ in range(4)]
        with pytest.raises(TypeError, match="share a parameter name"):
            bind(handler, boxes[0], Fields(ModelInputs, model=boxes[1], backend=boxes[2], max_length=boxes[3]))
        with pytest.raises(TypeError, match="ModelInputs takes the components"):
            Fields(ModelInputs, model=boxes[1], backend=boxes[2])


def test_event_data_after_defaults_is_still_gradio_s(tmp_path):
    def judge(ranking, view: ViewInputs, evt: gr.EventData):
        return evt

    with gr.Blocks():
        state = gr.State()
        view = Fields(ViewInputs, **{name: gr.Textbox() for name in ("sort", "min_score", "min_confidence", "top_k",
                                                                        "threshold", "only")})
        bound = bind(judge, state, view)
    names = [p.name for p in get_positional_input_parameters(bound)]
    assert names[0] == "ranking" and "evt" not in names and len(names) == 7


def test_the_status_timer_follows_the_load_state_not_the_html(tiny_model, tmp_path):
    """The timer runs while the model loads and stops once it is loaded or has failed; the text shown is not
    what decides it."""
    # the operator offers a folder that holds no model: it is allowed, and its load fails
    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=False,
                         models=[str(tmp_path / "missing")])
    inspector = Inspector(holder, presets=None, max_documents=10, annotations=None)
    settings = ModelInputs(tiny_model, "transformers", 512)
    assert inspector.model_state(settings)[0] == "not loaded" and inspector.poll_status(settings)[2].active is False
    future = holder.start(settings.settings())
    state, text, _, timer = (*inspector.model_state(settings), *inspector.poll_status(settings)[1:])
    assert state == "loading" and timer.active is True  # a model takes seconds to load, never microseconds
    future.result(timeout=300)
    state, text = inspector.model_state(settings)
    assert state == "ready" and "loaded" in text and inspector.poll_status(settings)[2].active is False

    missing = ModelInputs(str(tmp_path / "missing"), "transformers", 512)
    holder.start(missing.settings()).exception(timeout=300)  # the failed load is reported, not raised
    state, text = inspector.model_state(missing)
    assert state == "failed" and "could not be loaded" in text and inspector.poll_status(missing)[2].active is False
    assert inspector.model_state(ModelInputs("", "auto", 512))[0] == "invalid"  # no model: a message, no timer
    assert inspector.poll_status(ModelInputs("", "auto", 512))[2].active is False


def test_one_decorator_shows_library_errors_and_no_tab_copies_it():
    import ast
    import inspect
    from pathlib import Path

    from reranker.errors import InputError, RerankerError
    from reranker.ui.common import shows_errors

    @shows_errors
    def handler(text, request: gr.Request = None):
        raise InputError(f"bad {text}")

    @shows_errors(title="The file cannot be imported")
    def streams():
        yield 1
        raise RerankerError("disk <full>")

    assert list(inspect.signature(handler).parameters) == ["text", "request"]  # Gradio still sees the request
    with pytest.raises(gr.Error) as refused:
        handler("<input>")
    assert refused.value.title == "Please check the input" and refused.value.message == "bad &lt;input&gt;"
    assert inspect.isgeneratorfunction(streams)
    steps = streams()
    assert next(steps) == 1
    with pytest.raises(gr.Error) as failed:
        next(steps)
    assert failed.value.title == "The file cannot be imported" and "disk &lt;full&gt;" in failed.value.message
    # no handler of the UI layer converts a library error by hand (an ``except`` whose only statement raises it)
    copied = []
    for path in Path("reranker/ui").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.ExceptHandler) and len(node.body) == 1 and isinstance(node.body[0], ast.Raise)
                    and any(name in ast.unparse(node.type or ast.Name("")) for name in ("RerankerError", "InputError"))
                    and path.name != "common.py"):
                copied.append(f"{path.name}:{node.lineno}")
    assert copied == []
