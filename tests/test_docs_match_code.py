"""The docs checked against the code: the option tables are generated from the parsers, the backend table lists the
backend registry, and README's layout table lists the package's folders in the layer order of test_layout.py.

Option tables sit between ``<!-- options: NAME -->`` and ``<!-- /options -->`` (NAME: app, score, rank, check);
``python tests/test_docs_match_code.py`` writes them anew. Defaults are shown as the parsers have them with no
``RERANKER_*`` / ``GRADIO_*`` variables set.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCK = re.compile(r"(<!-- options: (?P<name>[\w-]+) -->\n)(?P<table>.*?)(<!-- /options -->)", re.S)


def _parsers() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    def app_parser() -> argparse.ArgumentParser:
        import sys

        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import app  # the server's own module, at the repository's root

        return app.build_parser()

    def command(name: str) -> Callable[[], argparse.ArgumentParser]:
        def parser() -> argparse.ArgumentParser:
            from reranker.cli import build_parser

            commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
            return commands.choices[name]
        return parser

    return {"app": app_parser, "score": command("score"), "rank": command("rank"), "check": command("check")}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def options_table(parser: argparse.ArgumentParser) -> str:
    """A Markdown table of ``parser``'s arguments (positionals first): the option and its help, with the default
    and the choices added where the help does not say them."""
    formatter = parser._get_formatter()
    lines = ["| option | meaning |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        names = ", ".join(f"`{n}`" for n in action.option_strings) or f"`{action.metavar or action.dest}`"
        if action.option_strings and action.nargs != 0 and action.metavar:
            names += f" {action.metavar}"
        meaning = formatter._expand_help(action) if action.help else ""
        if action.choices and not isinstance(action.choices, dict):
            meaning += f" (one of {', '.join(str(c) for c in action.choices)})"
        if action.required:
            meaning += " (required)"
        elif "default" not in meaning and action.option_strings and action.default not in (None, False):
            meaning += f" (default {action.default})"
        lines.append(f"| {_cell(names)} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """``text`` with every marked options table written anew."""
    parsers = _parsers()

    def table(match: re.Match) -> str:
        name = match["name"]
        if name not in parsers:
            raise KeyError(f"no parser named {name!r} for the options table (known: {', '.join(parsers)})")
        return match.group(1) + options_table(parsers[name]()) + match.group(4)

    return BLOCK.sub(table, text)


DOCS = ["README.md", "docs/app.md", "docs/batch.md"]
ENV = ("RERANKER_MODEL", "RERANKER_BACKEND", "RERANKER_SERVERS", "RERANKER_SERVERS_API_KEY", "RERANKER_API_KEY",
       "RERANKER_MODELS", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID")


def _rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first table whose header row starts with ``| heading |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("doc", DOCS)
def test_option_tables_are_what_the_parsers_say(doc, clean_env):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert render(text) == text, f"{doc}: an option table differs from the code; run `python tests/{Path(__file__).name}`"


def test_every_command_with_options_has_its_table():
    tables = {m["name"] for doc in DOCS for m in BLOCK.finditer((ROOT / doc).read_text(encoding="utf-8"))}
    assert {"app", "score"} <= tables


def test_readme_backend_table_is_the_backend_registry():
    from reranker.scoring.backends import BACKENDS

    listed = [re.match(r"`([^`]+)`", row[0])[1] for row in _rows((ROOT / "README.md").read_text(encoding="utf-8"),
                                                                  "backend")]
    assert sorted(listed) == sorted(BACKENDS), "README's backend table must list every backend of the registry"


def test_readme_layout_table_is_the_tree_in_layer_order():
    from tests.test_layout import LAYERS, PACKAGE

    listed = [name.strip("`").removesuffix("/").removesuffix(".py")
              for row in _rows((ROOT / "README.md").read_text(encoding="utf-8"), "folder")
              for name in row[0].split(", ")]
    tree = [name for name in LAYERS if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()]
    assert listed == [n for n in tree if n not in ("__main__", "__init__")]


def write() -> None:
    """Rewrite every option table of DOCS from the parsers."""
    for name in ENV:
        os.environ.pop(name, None)
    for doc in DOCS:
        path = ROOT / doc
        text = path.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote the option tables of {doc}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    write()
