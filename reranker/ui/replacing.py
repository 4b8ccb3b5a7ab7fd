"""Nothing a person typed is replaced silently: an action that fills inputs in (an example, a judged query brought
back, the sweep's click-throughs, its threshold) says what it replaced, and ``Undo`` puts exactly those values back.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from reranker.ui import common


@dataclass(frozen=True)
class Replaced:
    """What an action replaced: the components' values before it, in the ``Undo``'s order, and what they were."""

    values: tuple
    what: str  # said when they come back: "your query, instruction and documents"


class Undo:
    """An Undo button (hidden until something is replaced) for ``components``, and the state that keeps their
    replaced values. Build it where the button belongs; an action's outputs are ``outputs`` and it returns
    ``replace(...)``; ``wire`` connects the button."""

    def __init__(self, components: list, label: str, *, elem_id: str, what: str, **button):
        self.components = list(components)
        self.what = what
        self.state = gr.State(None)
        self.button = gr.Button(label, visible=False, size="sm", elem_id=elem_id, **button)

    @property
    def outputs(self) -> list:
        """The components, the state and the button: what an action that replaces them outputs."""
        return [*self.components, self.state, self.button]

    def replace(self, new_values, old_values, message: str) -> tuple:
        """The outputs of an action that puts ``new_values`` where ``old_values`` were; ``message`` (shown) says
        what came in and that Undo brings the rest back."""
        new_values, old_values = tuple(new_values), tuple(old_values)
        if len(new_values) != len(self.components) or len(old_values) != len(self.components):
            raise ValueError(f"{len(self.components)} values expected for {self.what}")
        kept = "is kept: Undo puts it back" if len(self.components) == 1 else "are kept: Undo puts them back"
        gr.Info(common.message(f"{message} Your previous {self.what} {kept}."))
        return (*new_values, Replaced(old_values, self.what), gr.update(visible=True))

    @staticmethod
    def restore(replaced: Replaced | None) -> tuple:
        """Put back what the last action replaced, exactly."""
        if replaced is None:
            raise gr.Error("Nothing to undo.")
        gr.Info(common.message(f"Your previous {replaced.what} {'is' if len(replaced.values) == 1 else 'are'} back."))
        return (*replaced.values, None, gr.update(visible=False))

    def wire(self) -> None:
        """Undo on click (queued, so that its message is shown)."""
        self.button.click(self.restore, self.state, self.outputs, api_name=False, concurrency_limit=None)
