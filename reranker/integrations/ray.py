"""Ray: scoring a Ray Dataset with one engine per actor, and running a batch job's shards as Ray tasks.

``pip install ".[ray]"``. Two ways in (docs/scale-out.md):

- :class:`~reranker.integrations.frames.ScoreBatches` as the callable class of ``Dataset.map_batches``: each
  actor loads one engine. Ray Data restarts a dead actor and runs its batches again. :func:`score_dataset` wires
  it up.
- :func:`run_shards_on_ray`, behind ``python -m reranker score ... --ray ADDRESS``: shard i of N of the job runs
  as a Ray task (the same code as ``--shard i/N``: its own job file, output and manifest); a task whose worker or
  node dies runs again and resumes from its job file where that survived. The command then merges the shards.
"""

from __future__ import annotations

from typing import Callable

from reranker.errors import RerankerError
from reranker.integrations.frames import ScoreBatches
from reranker.jobs.shards import Shard

__all__ = ["ScoreBatches", "run_shards_on_ray", "score_dataset"]


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise RerankerError('Ray is not installed: pip install ".[ray]"') from exc
    return ray


def score_dataset(dataset, model: str, *, actors: int = 1, gpus_per_actor: float = 0, cpus_per_actor: float = 1,
                  batch_size: int = 512, **options):
    """``dataset`` with the scores of its pairs: ``actors`` engines, each on ``gpus_per_actor`` GPUs.

    ``options`` go to :class:`ScoreBatches` (``backend``, ``max_length``, ``instruction``, engine options).
    Batches of a query's documents keep the shared prompt head together when the dataset is sorted by query.
    """
    return dataset.map_batches(ScoreBatches, fn_constructor_args=(model,), fn_constructor_kwargs=options,
                               batch_format="pandas", batch_size=batch_size, concurrency=actors,
                               num_gpus=gpus_per_actor, num_cpus=cpus_per_actor)


def _run_shard(run_shard: Callable[[Shard], list[str]], index: int, count: int) -> list[str]:
    return run_shard(Shard(index, count))


def run_shards_on_ray(run_shard: Callable[[Shard], list[str]], count: int, *, address: str | None = "auto",
                      gpus: float | None = None, cpus: float = 1, retries: int = 3) -> list[list[str]]:
    """Run ``run_shard(Shard(i, count))`` for every i as a Ray task; each shard's report, in shard order.

    Joins the running Ray instance if there is one, else connects to ``address``. ``gpus`` per task defaults
    to 1 on a cluster with GPUs, else 0. A task whose worker dies is run again (``retries`` times); an error of
    the job itself (bad input, another model) is not retried and is raised here as it was raised there.
    """
    ray = _ray()
    if count < 1:
        raise RerankerError(f"--ray-shards must be at least 1, got {count}.")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, log_to_driver=False)
    try:
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=retries, retry_exceptions=False)(_run_shard)
        pending = [task.remote(run_shard, index, count) for index in range(1, count + 1)]
        try:
            return ray.get(pending)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, RerankerError):
                raise cause from None
            raise
    finally:
        if started_here:
            ray.shutdown()
