"""An inspector run ranks exactly as the engine does; views filter and sort without rescoring."""

import pytest

from reranker.ranking import inspection
from reranker.files.documents import collect
from reranker.errors import InputError, ModelError
from reranker.serve.model_holder import ModelHolder, ModelSettings

DOCS = "\n".join([
    "The aurora is caused by charged solar particles.", "Banana bread needs ripe bananas.",
    "Tromsø is a good place to watch the northern lights.", "The aurora is caused by charged solar particles.",
    "Lighthouses warn ships.", "Magnetic storms push the auroral oval south.", "A recipe for kimchi.",
])


def test_run_in_batches_equals_engine_rank(hf_reranker):
    found = collect(DOCS, "line")
    calls = []
    result = inspection.run(hf_reranker, "northern lights", None, found, batch_size=3,
                            progress=lambda done, total: calls.append((done, total)))
    engine = hf_reranker.rank("northern lights", [d.text for d in found.documents])
    assert [r.index for r in result.rows] == [j.index for j in engine]
    assert [r.score for r in result.rows] == pytest.approx([j.score for j in engine], abs=1e-6)
    assert [r.rank for r in result.rows] == list(range(1, 8))
    assert calls == [(3, 7), (6, 7), (7, 7)]
    assert next(r for r in result.rows if r.index == 3).duplicate_of == "p1"
    assert result.model == hf_reranker.model and result.max_length == 512


def test_view_filters_and_sorts(hf_reranker):
    result = inspection.run(hf_reranker, "northern lights", "", collect(DOCS, "line"))
    rows = result.rows
    assert inspection.view(rows, top_k=3) == rows[:3]
    threshold = rows[2].score
    assert inspection.view(rows, min_score=threshold) == rows[:3]
    by_conf = inspection.view(rows, sort="confidence")
    assert [r.confidence for r in by_conf] == sorted((r.confidence for r in rows), reverse=True)
    assert [r.index for r in inspection.view(rows, sort="input")] == list(range(7))
    assert inspection.view(rows, min_confidence=1.01) == []


def test_run_refuses_bad_input(hf_reranker):
    with pytest.raises(InputError, match="query is empty"):
        inspection.run(hf_reranker, "  ", None, collect("a", "line"))
    with pytest.raises(InputError, match="no documents"):
        inspection.run(hf_reranker, "q", None, collect("", "line"))


def test_holder_reports_a_failed_load_and_shares_a_good_one(tiny_model, tmp_path):
    holder = ModelHolder(ModelSettings(str(tmp_path / "missing"), "transformers", 512), cache=False,
                         models=[tiny_model])
    with pytest.raises(ModelError, match="Cannot load model"):
        holder.get()
    assert holder.state()[0] == "failed"
    good = ModelSettings(tiny_model, "transformers", 512)
    assert holder.get(good) is holder.get(good)
    assert holder.state(good)[0] == "ready"
