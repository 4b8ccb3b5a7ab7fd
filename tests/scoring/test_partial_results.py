"""What a page needs to show results as they come: the verdicts of each finished batch, best first so far, and a
cancel check between batches that stops scoring."""

from __future__ import annotations

import pytest

from reranker.errors import Cancelled
from reranker.scoring.engine import ranked

DOCUMENTS = ["The giant panda is a bear.", "판다는 곰입니다 🐼", "<script>alert(1)</script> pandas", "Bamboo.",
             "Red pandas are not bears.", "A panda eats for 12 hours a day."]


def test_partial_rankings_grow_batch_by_batch_best_first_and_end_as_the_final_table(hf_reranker):
    seen = []
    final = hf_reranker.rank("what is a panda?", DOCUMENTS, batch_size=4, partial=seen.append)
    assert [len(rows) for rows in seen] == [4, 6]
    for rows in seen:
        assert rows == ranked(rows)
    assert seen[-1] == final
    assert {v.index for v in seen[0]} == {0, 1, 2, 3}


def test_cancel_stops_scoring_between_batches(hf_reranker):
    before = hf_reranker.stats.scored
    asked = []

    def cancelled() -> bool:
        asked.append(True)
        return len(asked) > 1  # let the first batch run, stop before the second

    with pytest.raises(Cancelled, match="after 2 of 6"):
        hf_reranker.rank("who eats bamboo?", DOCUMENTS, batch_size=2, cancelled=cancelled)
    assert hf_reranker.stats.scored - before == 2
