"""Index generations on disk: build beside, switch atomically, keep one to roll back to.

    DATA/generations/g-20261124T120000-1a2b/   a complete, verified generation
    DATA/generations/.building-.../           work in progress (deleted if found later)
    DATA/CURRENT                               {"current": name, "previous": name}

A generation directory is renamed into place only when every file in it is written and
fsynced, and CURRENT is replaced with os.replace (atomic on POSIX), so a crash or kill at
any moment leaves CURRENT naming a complete generation. Writers take an exclusive lock
so two reindexes cannot interleave; readers never lock.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from indexer.store.base import GenerationError

POINTER = "CURRENT"
KEEP_GENERATIONS = 2  # the serving one and the one to roll back to


@dataclass(frozen=True)
class Pointer:
    current: str | None
    previous: str | None


def generations_dir(data_dir: Path) -> Path:
    return data_dir / "generations"


def read_pointer(data_dir: Path) -> Pointer:
    try:
        raw = json.loads((data_dir / POINTER).read_text())
    except FileNotFoundError:
        return Pointer(None, None)
    return Pointer(raw.get("current"), raw.get("previous"))


def pointer_stamp(data_dir: Path) -> tuple[int, int] | None:
    """Cheap change detector for servers: (inode, mtime) of the pointer file."""
    try:
        st = os.stat(data_dir / POINTER)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def current_generation_dir(data_dir: Path) -> Path:
    pointer = read_pointer(data_dir)
    if pointer.current is None:
        raise GenerationError(
            f"no index in {data_dir}: run `python -m indexer reindex --catalog FILE --data-dir {data_dir}`"
        )
    return generations_dir(data_dir) / pointer.current


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(root))


def write_pointer(data_dir: Path, pointer: Pointer) -> None:
    tmp = data_dir / f".{POINTER}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump({"current": pointer.current, "previous": pointer.previous}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, data_dir / POINTER)
    _fsync_dir(data_dir)


def remove_leftovers(data_dir: Path) -> None:
    """Scratch directories of builds that were killed or failed."""
    for stale in generations_dir(data_dir).glob(".building-*"):
        shutil.rmtree(stale, ignore_errors=True)


def new_build_dir(data_dir: Path) -> tuple[str, Path]:
    """A fresh name and the scratch directory to build it in; stale scratch is removed."""
    root = generations_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(data_dir)
    name = f"g-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
    build = root / f".building-{name}"
    build.mkdir()
    return name, build


def seal(data_dir: Path, name: str, build: Path) -> Path:
    """Make a finished build a generation: fsync every file, then rename it into place."""
    fsync_tree(build)
    final = generations_dir(data_dir) / name
    os.rename(build, final)
    _fsync_dir(final.parent)
    return final


def activate(data_dir: Path, name: str) -> Pointer:
    """Switch serving to `name`; the generation it replaces becomes the rollback target."""
    old = read_pointer(data_dir)
    pointer = Pointer(current=name, previous=old.current)
    write_pointer(data_dir, pointer)
    prune(data_dir, keep={n for n in (pointer.current, pointer.previous) if n})
    return pointer


def rollback(data_dir: Path) -> Pointer:
    old = read_pointer(data_dir)
    if old.previous is None or not (generations_dir(data_dir) / old.previous).is_dir():
        raise GenerationError("there is no previous generation to roll back to")
    pointer = Pointer(current=old.previous, previous=old.current)
    write_pointer(data_dir, pointer)
    return pointer


def prune(data_dir: Path, keep: set[str]) -> None:
    """Delete generations other than those kept (open files stay readable until closed)."""
    for path in generations_dir(data_dir).glob("g-*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
