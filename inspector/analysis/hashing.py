"""Parallel, read-only hashing of object files (content sha256 and fs-verity digests).

hashlib releases the GIL while it digests a buffer, so a ThreadPoolExecutor spreads the work
over every core without processes.  Each file is read once, in 1 MiB ``os.read`` chunks, and
fed to every hash the caller needs (content sha256 for containers/storage names, fs-verity
sha256/sha512 for DIGESTs and composefs-rs names).

Files are opened ``O_RDONLY|O_NOFOLLOW`` (+``O_NOATIME`` when we own them) and ``fstat``-ed
after the open: a symlink or special file swapped in after the scan is refused, never read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from inspector.composefs.fsverity import FsVerityHasher
from inspector.stores.fsutil import open_ro

CHUNK = 1 << 20

#: Hash names: "sha256" = plain content sha256; "fsverity-sha256"/"fsverity-sha512".
ALGS = ("sha256", "fsverity-sha256", "fsverity-sha512")

Progress = Callable[[int, int, int], None]   # (files done, files total, bytes hashed)


#: The fs-verity hasher (batched level-0 hashing lives in inspector.composefs.fsverity).
FastVerity = FsVerityHasher


@dataclass(frozen=True, slots=True)
class HashJob:
    path: Path
    identity: tuple[int, int]
    algs: frozenset[str]
    size: int


@dataclass(frozen=True, slots=True)
class HashResult:
    size: int | None = None
    digests: tuple[tuple[str, str], ...] = ()     # (alg, hex)
    error: str | None = None                      # "unreadable: ..." / "suspicious: ..."
    error_kind: str | None = None                 # "unreadable" | "suspicious" | "cancelled"

    def get(self, alg: str) -> str | None:
        for a, h in self.digests:
            if a == alg:
                return h
        return None


def hash_file(job: HashJob, cancel: threading.Event | None = None) -> HashResult:
    """Read one object and compute the requested digests; errors become a HashResult."""
    # lstat first: a FIFO, device or symlink is refused without being opened at all (opening
    # a device can have side effects); the fstat after the open catches a later swap.
    try:
        pre = os.lstat(job.path)
    except OSError as e:
        return HashResult(error=f"cannot open: {e.strerror}", error_kind="unreadable")
    if stat.S_ISLNK(pre.st_mode):
        return HashResult(error="is a symlink, not followed", error_kind="suspicious")
    if not stat.S_ISREG(pre.st_mode):
        return HashResult(error="not a regular file, not read", error_kind="suspicious")
    try:
        fd = open_ro(job.path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return HashResult(error="is a symlink, not followed", error_kind="suspicious")
        return HashResult(error=f"cannot open: {e.strerror}", error_kind="unreadable")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return HashResult(error="not a regular file, not read", error_kind="suspicious")
        if job.identity[1] and (st.st_dev, st.st_ino) != job.identity:
            # Not the file the scan saw: replaced, or reached through a directory swapped for a
            # symlink since (objects/xx -> elsewhere).  Never read what might be outside.
            return HashResult(error="changed since the scan (replaced or reached through a "
                                    "symlink), not read", error_kind="suspicious")
        sha = hashlib.sha256() if "sha256" in job.algs else None
        fsv = {a: FastVerity(a.split("-", 1)[1]) for a in job.algs if a.startswith("fsverity-")}
        total = 0
        while True:
            if cancel is not None and cancel.is_set():
                return HashResult(error="cancelled", error_kind="cancelled")
            buf = os.read(fd, CHUNK)
            if not buf:
                break
            total += len(buf)
            if sha is not None:
                sha.update(buf)
            for h in fsv.values():
                h.update(buf)
        out = []
        if sha is not None:
            out.append(("sha256", sha.hexdigest()))
        for a, h in sorted(fsv.items()):
            out.append((a, h.hexdigest()))
        return HashResult(size=total, digests=tuple(out))
    except OSError as e:
        return HashResult(error=f"cannot read: {e.strerror}", error_kind="unreadable")
    finally:
        os.close(fd)


def default_jobs() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 32))


def hash_all(jobs: Iterable[HashJob], workers: int | None = None,
             progress: Progress | None = None,
             cancel: threading.Event | None = None) -> dict[tuple[int, int], HashResult]:
    """Hash every job (one per physical inode) in parallel; results keyed by identity."""
    todo = list(jobs)
    total = len(todo)
    results: dict[tuple[int, int], HashResult] = {}
    if progress:
        progress(0, total, 0)
    if not todo:
        return results
    workers = workers or default_jobs()
    if cancel is None:
        cancel = threading.Event()   # lets Ctrl-C stop the workers between chunks
    # Bounded in-flight queue: keeps memory flat on stores with millions of objects and lets
    # cancellation take effect promptly.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cfs-hash") as pool:
        try:
            _drain(pool, iter(todo), workers, cancel, results, progress, total)
        except BaseException:
            cancel.set()
            raise
    return results


def _drain(pool: ThreadPoolExecutor, it, workers: int, cancel: threading.Event,
           results: dict, progress: Progress | None, total: int) -> None:
    pending: dict = {}
    done = 0
    nbytes = 0
    exhausted = False
    while pending or not exhausted:
        while not exhausted and len(pending) < workers * 4:
            if cancel.is_set():
                exhausted = True
                break
            try:
                job = next(it)
            except StopIteration:
                exhausted = True
                break
            pending[pool.submit(hash_file, job, cancel)] = job
        if not pending:
            break
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in finished:
            job = pending.pop(fut)
            res = fut.result()
            results[job.identity] = res
            done += 1
            nbytes += res.size or 0
            if progress:
                progress(done, total, nbytes)
