"""The empty-query and no-document rules, defined once (``scoring.inputs``): every way in refuses the same input
with the same words."""

from __future__ import annotations

import pytest

from reranker.errors import InputError
from reranker.files.documents import Collection
from reranker.ranking import inspection
from reranker.scoring import inputs
from reranker.scoring.engine import validate_pairs


@pytest.mark.parametrize("query, problem", [("", inputs.EMPTY_QUERY), (" \n\t", inputs.EMPTY_QUERY),
                                            (None, "the query must be text, not NoneType"), ("q", None)])
def test_query_problem(query, problem):
    assert inputs.query_problem(query) == problem


def test_the_engine_the_inspector_run_and_the_pair_check_say_the_same(hf_reranker):
    with pytest.raises(InputError) as engine:
        hf_reranker.rank("  ", ["doc"])
    with pytest.raises(InputError) as run:
        inspection.run(hf_reranker, "  ", None, Collection())
    assert str(engine.value) == str(run.value) == "The query is empty: type what you are searching for."
    with pytest.raises(InputError) as engine:
        hf_reranker.rank("q", [])
    with pytest.raises(InputError) as run:
        inspection.run(hf_reranker, "q", None, Collection())
    assert str(engine.value) == str(run.value) == "There are no documents to rank: give at least one."
    with pytest.raises(InputError, match=r"the query is empty \(item 1\)"):
        validate_pairs([("q", "d"), (" ", "d")])
