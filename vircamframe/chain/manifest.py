"""The chain's memory: which job ran with which key and made which products.

One JSON file in the output tree (``temp/manifest.json``), rewritten atomically after every
finished job, so a run killed at any moment leaves either the previous manifest or the next
one. A job is skipped when the manifest holds it as done with the same key and every product
it recorded is still on disk with the ``DATAMD5`` it had. Products are never found by file
name games: the manifest lists them.

The key of a job is a hash of what decides its products: the recipe and its version, the
framework and plugin versions, every parameter value, and the content of every input (a
product's ``DATAMD5``; a raw file's MD5, cached by size and modification time so a second
run does not read the raw data again).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ChainError
from ..fitsio import read_primary_header
from ..frames import Frame, FrameSet

__all__ = ["JobRecord", "Manifest", "ProductRecord", "chain_products", "job_key"]

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ProductRecord:
    """A product a job wrote: where, its tag, its ``DATAMD5`` and the frame it was made from."""

    path: str
    tag: str
    datamd5: str
    parent: str | None = None


@dataclass
class JobRecord:
    """What the manifest remembers of one job."""

    key: str
    recipe: str
    status: str  # done | failed
    seconds: float = 0.0
    finished: str = ""
    peak_rss_mb: float = 0.0  # peak resident memory of the job (its process or a tool) [MB]
    products: list[ProductRecord] = field(default_factory=list)
    error: str = ""
    log: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        products = [ProductRecord(**p) for p in data.pop("products", [])]
        return cls(products=products, **data)


def job_key(description: dict[str, Any]) -> str:
    """SHA-256 of a JSON description of a job (sorted keys, so it is stable)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stored_md5(path: Path) -> str | None:
    """The ``DATAMD5`` a product carries in its primary header (None for other files)."""
    try:
        value = read_primary_header(path).get("DATAMD5")
    except Exception:  # unreadable or torn: not a product to trust
        return None
    return str(value) if value else None


class Manifest:
    """The JSON manifest of a chain's output tree."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.jobs: dict[str, JobRecord] = {}
        self.files: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text())
            if data.get("version") == MANIFEST_VERSION:
                self.jobs = {k: JobRecord.from_json(v) for k, v in data.get("jobs", {}).items()}
                self.files = data.get("files", {})

    # --- content hashes ---------------------------------------------------------------------
    def content_hash(self, path: Path) -> str:
        """``DATAMD5`` of a product, else the MD5 of the file (cached by size and mtime)."""
        stat = path.stat()
        entry = self.files.get(str(path))
        if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
            return entry["md5"]
        md5 = stored_md5(path) if path.suffix in (".fits", ".fz") else None
        if md5 is None:
            digest = hashlib.md5()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
            md5 = digest.hexdigest()
        self.files[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5}
        return md5

    # --- jobs ---------------------------------------------------------------------------------
    def current(self, job_id: str, key: str, root: Path) -> JobRecord | None:
        """The record of ``job_id`` when it is done with ``key`` and its products are intact."""
        record = self.jobs.get(job_id)
        if record is None or record.status != "done" or record.key != key:
            return None
        for product in record.products:
            if stored_md5(root / product.path) != product.datamd5:
                return None
        return record

    def record(self, job_id: str, record: JobRecord) -> None:
        """Remember ``record`` and write the manifest at once (atomically)."""
        record.finished = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self.jobs[job_id] = record
        self.save()

    def forget(self, job_ids: Sequence[str] | None = None) -> None:
        """Drop the records of ``job_ids`` (all when None): they will run again."""
        if job_ids is None:
            self.jobs.clear()
        else:
            for job_id in job_ids:
                self.jobs.pop(job_id, None)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": MANIFEST_VERSION,
            "jobs": {k: asdict(v) for k, v in sorted(self.jobs.items())},
            "files": self.files,
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def chain_products(out: str | os.PathLike, *tags: str) -> FrameSet:
    """The products a chain made in the output tree ``out`` (those with ``tags``, or all),
    as the manifest lists them, in job order."""
    out = Path(out)
    manifest = Manifest(out / "temp" / "manifest.json")
    if not manifest.jobs:
        raise ChainError(f"{out}: no chain manifest (temp/manifest.json) with finished jobs")
    return FrameSet(
        Frame(out / p.path, p.tag, "CALIB")
        for record in manifest.jobs.values() if record.status == "done"
        for p in record.products if not tags or p.tag in tags
    )
