"""Shared test fixtures: paths into ../shared/fixtures and extracted store tarballs.

The store tarballs are extracted with the system tar (Python's tarfile drops xattrs), as the
fixture README requires, once per session into a temporary directory.  Tests that modify a
store must copy it first (``fresh_store``), never touch the session copy.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
IMAGES = FIXTURES / "images"
TREES = FIXTURES / "trees"
SAMPLE = TREES / "sample"
STORES = FIXTURES / "stores"

IMAGE_NAMES = sorted(p.stem for p in IMAGES.glob("*.cfs"))
SAMPLE_NAMES = sorted(p.stem for p in SAMPLE.glob("*.cfs"))


def extract_tarball(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xf", str(tarball), "-C", str(dest)],
        check=True,
    )
    return dest


@pytest.fixture(scope="session")
def store_root(tmp_path_factory):
    """Return a function NAME -> extracted directory (shared, read-only by convention)."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            dest = tmp_path_factory.mktemp(f"store-{name}")
            cache[name] = extract_tarball(STORES / f"{name}.tar.gz", dest)
        return cache[name]

    return get


@pytest.fixture
def fresh_store(tmp_path):
    """Return a function NAME -> a private extraction this test may damage."""

    def get(name: str) -> Path:
        return extract_tarball(STORES / f"{name}.tar.gz", tmp_path / name)

    return get


@pytest.fixture(scope="session")
def sample_objects(tmp_path_factory):
    """The sample tree's digest store, extracted once (read-only by convention)."""
    dest = tmp_path_factory.mktemp("sample-objects")
    subprocess.run(["tar", "-xf", str(SAMPLE / "sample-objects.tar"), "-C", str(dest)], check=True)
    return dest


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest
