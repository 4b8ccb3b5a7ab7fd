"""The Spark recipe of docs/scale-out.md (``mapInPandas`` around ``ScoreBatches``) on a local Spark on loopback."""

from __future__ import annotations

import os
import shutil
import sys

import pandas as pd
import pytest

from reranker.files.pair_tables import PairTable
from reranker.jobs import BatchJob, run_batch
from tests.support import ROOT

pyspark = pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow  # a JVM and a Python worker start in ~30 s here
SCHEMA = ("row long, query_id string, doc_id string, score double, confidence double, logodds double, "
          "truncated boolean, n_tokens long, cached boolean, reject string")


def score_partition(frames, model: str):
    """The recipe's function: one engine per task, every pandas batch of the partition through it."""
    from reranker.integrations.frames import ScoreBatches

    scorer = ScoreBatches(model, backend="transformers", max_length=512)
    for frame in frames:
        yield scorer(frame)


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None:
        pytest.fail("Spark needs a Java runtime: apt-get install default-jre-headless (make test does)")
    from pyspark.sql import SparkSession

    patch = pytest.MonkeyPatch()
    patch.setenv("PYSPARK_PYTHON", sys.executable)
    patch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    patch.setenv("OMP_NUM_THREADS", "1")
    session = (SparkSession.builder.master("local[1]").appName("reranker-tests")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false").config("spark.driver.memory", "512m")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "40").getOrCreate())
    yield session
    session.stop()
    patch.undo()


def test_the_spark_recipe_scores_every_pair_once_as_the_batch_job_does(spark, tiny_model, tmp_path):
    pairs = pd.DataFrame([{"row": i + 1, "query_id": f"q{i // 10}", "query": f"what is topic {i // 10}",
                           "doc_id": f"d{i}", "document": f"passage {i} talks about topic {i % 7}"} for i in range(120)])
    pairs.loc[33, "document"] = " "
    pairs.drop(columns="row").to_csv(tmp_path / "pairs.csv", index=False)
    run_batch(BatchJob(PairTable(tmp_path / "pairs.csv"), tmp_path / "whole.parquet", model=tiny_model,
                       max_length=512, progress=False),
              lambda: __import__("reranker").Reranker(tiny_model, backend="transformers", cache=False,
                                                      max_length=512))
    want = pd.read_parquet(tmp_path / "whole.parquet")

    frame = spark.createDataFrame(pairs).repartition(3, "query_id")
    scored = frame.mapInPandas(lambda frames: score_partition(frames, tiny_model), SCHEMA).toPandas()
    scored = scored.sort_values("row").reset_index(drop=True)
    assert list(scored["row"]) == list(range(1, 121))
    assert list(scored.loc[scored["reject"].notna(), "row"]) == [34]
    ok = scored[scored["reject"].isna()].reset_index(drop=True)
    assert list(ok["doc_id"]) == list(want["doc_id"])
    assert list(ok["logodds"]) == pytest.approx(list(want["logodds"]), abs=1e-5)
    assert list(ok["score"]) == pytest.approx(list(want["score"]), abs=1e-6)
