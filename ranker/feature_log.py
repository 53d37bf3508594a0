"""Feature logging: what the ranker saw for the results it returned, for training later
from real traffic (joined with click and purchase events by query id).

One JSON line per logged search under DATA/feature-log/<UTC date>.jsonl, each result's
features as an OpenSearch-LTR-style `log_entry` list of {name, value}. Lines are written
with a single O_APPEND write, so the processes of a server never interleave them.
Off by default; SHOPRANK_FEATURE_LOG_RATE (0 to 1) samples that share of searches.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from indexer import settings
from ranker.features.names import FEATURE_NAMES


class FeatureLog:
    def __init__(self, directory: Path, sample_rate: float):
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"feature log sample rate must be between 0 and 1, got {sample_rate}")
        self.directory = directory
        self.sample_rate = sample_rate

    @classmethod
    def from_env(cls, data_dir: Path) -> FeatureLog | None:
        rate = settings.feature_log_rate()
        return cls(data_dir / "feature-log", rate) if rate > 0 else None

    def sampled(self) -> bool:
        return random.random() < self.sample_rate

    def record(self, query_id: str, query: str, generation: str, model: str, filters: dict[str, Any],
               results: list[dict[str, Any]], corrected_query: str | None = None) -> None:
        """`results`: the returned page, each with "id" and its "features" dict; `query_id`
        is the search response's, which shopper events carry."""
        line = {
            "query_id": query_id,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "query": query,
            "corrected_query": corrected_query,  # what the features were computed for, if not `query`
            "generation": generation,
            "model": model,
            "filters": filters,
            "results": [
                {"id": r["id"], "rank": rank,
                 "log_entry": [{"name": name, "value": r["features"][name]} for name in FEATURE_NAMES]}
                for rank, r in enumerate(results, start=1)
            ],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.directory / f"{time.strftime('%Y-%m-%d', time.gmtime())}.jsonl",
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
