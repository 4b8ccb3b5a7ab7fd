"""Where a job reads and writes: local paths or object-storage URLs (``s3://``, ``gs://``, ``hf://``...) via fsspec.

A location is a ``Path`` (local) or a ``str`` URL. Inputs at a URL are copied once into a local folder (the
readers seek and count lines, which object stores do badly), and copied again only when the remote object's
size or ETag/modification time changed. Outputs are streamed to the URL: an object store publishes an object
only when its upload completes, so a reader never sees half a file; local outputs are written to a temporary
file and renamed into place. S3-compatible stores (MinIO, Ceph) are reached with ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path
from typing import BinaryIO, Callable, Union

from reranker.errors import InputError

Location = Union[Path, str]
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(location: str | Path) -> bool:
    """True for ``scheme://...`` (``file://`` included); False for a plain path."""
    return isinstance(location, str) and bool(_URL.match(location))


def as_location(value: str | Path) -> Location:
    """A URL stays a string; anything else is a local Path."""
    return value if is_url(value) else Path(value)


def name_of(location: Location) -> str:
    return location.name if isinstance(location, Path) else location.rstrip("/").rsplit("/", 1)[-1]


def sibling(location: Location, name: str) -> Location:
    """The location ``name`` in the same folder (or URL prefix) as ``location``."""
    if isinstance(location, Path):
        return location.with_name(name)
    return location.rstrip("/").rsplit("/", 1)[0] + "/" + name


def resolved(location: Location) -> str:
    """A stable text for a location (absolute path, or the URL itself)."""
    return str(location.resolve()) if isinstance(location, Path) else location


def filesystem(url: str):
    """(fsspec filesystem, path within it); a missing driver (s3fs, gcsfs) is an error naming the install."""
    try:
        from fsspec.core import url_to_fs

        return url_to_fs(url)
    except ImportError as exc:
        raise InputError(f"Cannot open {url}: {exc} (pip install \".[cloud]\" installs s3fs and gcsfs).") from exc
    except ValueError as exc:
        raise InputError(f"Cannot open {url}: {exc}.") from exc


def exists(location: Location) -> bool:
    if isinstance(location, Path):
        return location.exists()
    fs, path = filesystem(location)
    return fs.exists(path)


def remove(location: Location) -> None:
    """Delete a file or object if it is there."""
    if isinstance(location, Path):
        location.unlink(missing_ok=True)
        return
    fs, path = filesystem(location)
    if fs.exists(path):
        fs.rm_file(path)


def read_bytes(location: Location) -> bytes:
    if isinstance(location, Path):
        return location.read_bytes()
    fs, path = filesystem(location)
    try:
        return fs.cat_file(path)
    except FileNotFoundError as exc:
        raise InputError(f"Cannot read {location}: there is no such object.") from exc


def open_for_reading(location: Location) -> BinaryIO:
    if isinstance(location, Path):
        return open(location, "rb")
    fs, path = filesystem(location)
    return fs.open(path, "rb")


def list_matching(location: Location, pattern: str) -> list[Location]:
    """Locations in ``location``'s folder whose names match the glob ``pattern``, sorted."""
    if isinstance(location, Path):
        return sorted(location.parent.glob(pattern))
    folder = sibling(location, "")
    fs, path = filesystem(folder)
    fs.invalidate_cache()  # other processes (other shards) wrote there since this one last listed it
    protocol = folder.split("://", 1)[0]
    return sorted(f"{protocol}://{p}" for p in fs.glob(path.rstrip("/") + "/" + pattern))


def write_atomically(location: Location, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through ``write(handle)`` so that no reader ever sees it half written."""
    if not isinstance(location, Path):
        fs, path = filesystem(location)
        with fs.open(path, "wb") as handle:  # an object appears only when its upload completes
            write(handle)
        return
    location.parent.mkdir(parents=True, exist_ok=True)
    for stale in location.parent.glob(f".{glob.escape(location.name)}.*.tmp"):  # left by a killed export
        stale.unlink(missing_ok=True)
    temporary = location.with_name(f".{location.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, location)
    finally:
        temporary.unlink(missing_ok=True)


def local_copy(url: str, folder: Path) -> Path:
    """A local copy of the object at ``url`` in ``folder``, fetched again only when the object changed."""
    fs, path = filesystem(url)
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise InputError(f"Cannot read {url}: there is no such object.") from exc
    version = {"url": url, "size": info.get("size"),
               "version": str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime")
                              or info.get("LastModified") or "")}
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / name_of(url)
    stamp = copy.with_name(copy.name + ".source.json")
    if copy.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == version:
        return copy
    stamp.unlink(missing_ok=True)
    temporary = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
    try:
        fs.get_file(path, str(temporary))
        os.replace(temporary, copy)
    finally:
        temporary.unlink(missing_ok=True)
    stamp.write_text(json.dumps(version))
    return copy
