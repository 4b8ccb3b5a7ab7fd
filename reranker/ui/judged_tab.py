"""The judged-data workspace: every query the visitor judged (a query set, as in Quepid's cases) with its judged
count, nDCG@10 of the scores stored with the judgements and its disagreements; choosing one brings its query,
documents (their stored text) and instruction back into *Rank & judge*, saying so, with an undo. The other
workspaces' rows (multi-query, sweep) bring their query back the same way (``bring_back``)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from reranker.ranking import metrics
from reranker.ranking.disagreements import disagreements
from reranker.storage.judgements import Annotation
from reranker.ui import common, replacing
from reranker.ui.judging_tab import Annotator
from reranker.scoring.prompt import DEFAULT_INSTRUCTION

COLUMNS = ["Query", "Judged", "Relevant", "nDCG@10", "Disagreements", "Instruction", "Last judged"]
SEPARATOR = re.compile(r"^\s*-{3,}\s*$", re.MULTILINE)  # documents.split_text's "dashes" separator


@dataclass(frozen=True)
class Stored:
    """A judged query as brought back: its text, instruction and judged documents (stored text, best first)."""

    query: str
    instruction: str
    documents: list[str]


class JudgedQueries:
    """Handlers of the judged-data workspace, over the page's judgement store."""

    def __init__(self, annotator: Annotator, undo: replacing.Undo):
        self.annotator = annotator
        self.undo = undo  # Rank & judge's query, instruction, documents and split mode

    def _mine(self, person, request, profile) -> dict[str, list[Annotation]]:
        owner = self.annotator._shown(person, request, profile)
        by_query: dict[str, list[Annotation]] = {}
        for judgement in self.annotator.store.all(owner=owner):
            by_query.setdefault(judgement.query, []).append(judgement)
        return by_query

    @common.shows_errors
    def table(self, threshold, person="", request: gr.Request = None,
              profile: gr.OAuthProfile | None = None) -> pd.DataFrame:
        """One row per judged query, the most recently judged first."""
        rows = []
        for query, judged in self._mine(person, request, profile).items():
            scored = [j for j in judged if j.score is not None]
            ranking = [j.doc_hash for j in sorted(scored, key=lambda j: -j.score)]
            labels = {j.doc_hash: j.label for j in judged}
            ndcg = metrics.evaluate(ranking, labels).value("nDCG@10") if ranking else None
            found = disagreements(scored, labels, threshold)
            instructions = {j.instruction for j in judged}
            rows.append({"Query": query, "Judged": len(judged),
                         "Relevant": sum(j.label == 2 for j in judged),
                         "nDCG@10": None if ndcg is None else round(ndcg, 4), "Disagreements": len(found),
                         "Instruction": instructions.pop() if len(instructions) == 1 else f"{len(instructions)} "
                                                                                          "instructions",
                         "Last judged": time.strftime("%Y-%m-%d %H:%M", time.gmtime(max(j.updated for j in judged))),
                         "_updated": max(j.updated for j in judged)})
        frame = pd.DataFrame(rows, columns=[*COLUMNS, "_updated"])
        return frame.sort_values("_updated", ascending=False)[COLUMNS].reset_index(drop=True)

    def stored(self, query: str, person="", request: gr.Request = None,
               profile: gr.OAuthProfile | None = None) -> Stored:
        """The judged documents of ``query`` (best stored score first) and the instruction they were judged under."""
        judged = self._mine(person, request, profile).get(query)
        if not judged:
            raise gr.Error(common.message(f"There are no judgements of {query!r} (any more)."))
        judged = sorted(judged, key=lambda j: -(j.score if j.score is not None else -1))
        instruction = judged[0].instruction or DEFAULT_INSTRUCTION
        return Stored(query, instruction, [j.document for j in judged])

    def bring_back(self, stored: Stored, query, instruction, pasted, mode) -> tuple:
        """The outputs that put ``stored`` into *Rank & judge* (in place of the current ``query``, ``instruction``,
        ``pasted`` documents and split ``mode``, kept for Undo, saying so) and open it."""
        newline = any("\n" in d for d in stored.documents)
        if newline and any(SEPARATOR.search(d) for d in stored.documents):
            raise gr.Error("A stored document contains a line of dashes, so its documents cannot be pasted back "
                           "apart: export the judgements instead.")
        mode_back = "dashes" if newline else "line"
        pasted_back = ("\n---\n" if newline else "\n").join(stored.documents)
        return (*self.undo.replace((stored.query, stored.instruction, pasted_back, mode_back),
                                   (query, instruction, pasted, mode),
                                   f"Opened {stored.query!r} with its {len(stored.documents)} judged documents and "
                                   "their instruction in Rank & judge."),
                gr.Tabs(selected="rank"))

    def open(self, frame: pd.DataFrame, query, instruction, pasted, mode, person="", evt: gr.SelectData = None,
             request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        """A click on a judged query: its query, documents and instruction replace those of *Rank & judge*, which
        opens; the replaced inputs are kept for Undo, and a message says so."""
        row = evt.index[0] if evt is not None and isinstance(evt.index, (list, tuple)) else None
        if row is None or row >= len(frame):
            raise gr.Error("Choose a judged query in the table.")
        stored = self.stored(frame.iloc[row]["Query"], person, request, profile)
        return self.bring_back(stored, query, instruction, pasted, mode)
