"""One writer at a time per data directory: a second reindex, upsert or delete fails at
once with a clear message instead of interleaving with the first. Readers never lock."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.store.base import GenerationError


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".writer.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GenerationError(f"another reindex/upsert/delete is running on {data_dir}") from None
        yield
