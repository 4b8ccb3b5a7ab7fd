"""Ray on loopback: Ray Data actors and a job's shards as Ray tasks score every pair once, as the batch job does,
through a killed actor or worker (docs/scale-out.md)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from reranker.cli import main
from reranker.integrations.frames import ScoreBatches
from reranker.integrations.ray import score_dataset
from reranker.jobs import BatchJob, run_batch
from reranker.files.pair_tables import PairTable
from tests.support import ROOT

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a Ray cluster and its workers start in ~30 s here


def make_pairs(n: int, docs_per_query: int) -> pd.DataFrame:
    return pd.DataFrame([{"query_id": f"q{i // docs_per_query}", "query": f"what is topic {i // docs_per_query}",
                          "doc_id": f"d{i}", "document": f"passage {i} talks about topic {i % 7}"} for i in range(n)])


@pytest.fixture(scope="module")
def ray_cluster(s3_bucket):
    """A one-node Ray cluster on loopback: 2 CPUs, a 200 MB object store; workers see this checkout and the S3
    server's variables."""
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", **{n: os.environ[n] for n in names}}
    ray.init(num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env}, _node_ip_address="127.0.0.1")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def single_process_scores(tiny_model, tmp_path_factory):
    """The pairs every Ray test scores, and their scores from the single-process batch job."""
    folder = tmp_path_factory.mktemp("ray-pairs")
    pairs = make_pairs(300, docs_per_query=10)
    pairs.loc[41, "document"] = ""  # one reject
    pairs.to_csv(folder / "pairs.csv", index=False)
    from reranker import Reranker

    job = BatchJob(PairTable(folder / "pairs.csv"), folder / "whole.parquet", model=tiny_model, max_length=512,
                   chunk_rows=10, progress=False)
    run_batch(job, lambda: Reranker(tiny_model, backend="transformers", cache=False, max_length=512))
    return folder / "pairs.csv", pd.read_parquet(folder / "whole.parquet")


class ScoreBatchesKilledOnce(ScoreBatches):
    """The real scorer, whose actor process SIGKILLs itself the first time it is given row 150."""

    marker: str = ""

    def __init__(self, *args, marker: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.marker = marker

    def __call__(self, batch):
        if 150 in set(batch["row"]) and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


def test_ray_data_actors_score_every_pair_once_through_a_killed_actor(ray_cluster, tiny_model,
                                                                       single_process_scores, tmp_path):
    source, want = single_process_scores
    pairs = pd.read_csv(source, keep_default_na=False)
    pairs.insert(0, "row", range(1, len(pairs) + 1))
    dataset = ray.data.from_pandas(pairs).repartition(6)
    marker = tmp_path / "killed"
    scored = dataset.map_batches(
        ScoreBatchesKilledOnce, fn_constructor_args=(tiny_model,),
        fn_constructor_kwargs={"backend": "transformers", "max_length": 512, "marker": str(marker)},
        batch_format="pandas", batch_size=25, concurrency=1, num_cpus=1,
    ).to_pandas().sort_values("row").reset_index(drop=True)
    assert marker.exists(), "the actor was not killed"
    assert len(scored) == 300 and scored["row"].is_unique
    assert list(scored.loc[scored["reject"].notna(), "row"]) == [42]
    assert scored.loc[41, "reject"] == "empty document"
    ok = scored[scored["reject"].isna()].reset_index(drop=True)
    assert list(ok["row"]) == list(want["row"]) and list(ok["doc_id"]) == list(want["doc_id"])
    assert list(ok["logodds"]) == pytest.approx(list(want["logodds"]), abs=1e-5)
    assert list(ok["score"]) == pytest.approx(list(want["score"]), abs=1e-6)
    assert list(ok["n_tokens"]) == list(want["n_tokens"])

    again = score_dataset(ray.data.from_pandas(pairs), tiny_model, actors=1, batch_size=60, backend="transformers",
                          max_length=512).to_pandas().sort_values("row").reset_index(drop=True)
    assert list(again["row"]) == list(scored["row"]) and list(again["reject"].fillna("")) == list(
        scored["reject"].fillna(""))
    assert list(again["logodds"].dropna()) == pytest.approx(list(ok["logodds"]), abs=1e-5)


def _lock_holder(path: Path) -> int | None:
    """The pid holding the job file's ``flock`` (Linux ``/proc/locks``: pid and device:inode of each lock)."""
    inode = path.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return int(fields[4])
    return None


def _kill_a_shard_task_midway(jobs: Path, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the Ray worker scoring the first shard that has committed two chunks and is not done."""
    while not stop.is_set() and not killed:
        for job_file in jobs.glob("*.job.sqlite3"):
            try:
                with sqlite3.connect(f"file:{job_file}?mode=ro", uri=True, timeout=1) as conn:
                    committed = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
                    done = conn.execute("SELECT value FROM meta WHERE key = 'status'").fetchone()
            except sqlite3.OperationalError:
                continue
            pid = _lock_holder(job_file) if committed >= 2 and done != ('"done"',) else None
            if pid and pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.005)


def test_score_command_on_ray_with_s3_survives_a_killed_worker(ray_cluster, tiny_model, single_process_scores,
                                                                s3_bucket, tmp_path, capsys):
    import fsspec

    source, want = single_process_scores
    fsspec.filesystem("s3").put_file(str(source), f"{s3_bucket}/ray/pairs.csv")
    merged, jobs = f"{s3_bucket}/ray/out/scores.parquet", tmp_path / "jobs"
    jobs.mkdir()
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_shard_task_midway, args=(jobs, killed, stop), daemon=True)
    killer.start()
    try:
        code = main(["score", f"{s3_bucket}/ray/pairs.csv", "-o", merged, "--ray", "auto", "--ray-shards", "3",
                     "--job-dir", str(jobs), "--chunk-size", "1", "--model", tiny_model, "--backend",
                     "transformers", "--no-cache", "--max-length", "512", "--no-progress"])
    finally:
        stop.set()
        killer.join()
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert killed, "no shard task was killed"
    assert " before)" in printed  # the killed shard's retry resumed from its job file
    assert "3 shards: 299 pairs scored, 1 rejects" in printed
    got = pd.read_parquet(merged)
    assert got["row"].is_unique and list(got["row"]) == list(want["row"])
    assert list(got["doc_id"]) == list(want["doc_id"])
    assert list(got["score"]) == pytest.approx(list(want["score"]), abs=1e-6)
    assert list(pd.read_csv(f"{s3_bucket}/ray/out/scores.rejects.csv")["row"]) == [42]
