"""`python -m ranker evaluate-personalization`: personal ranking measured on simulated
shoppers (ranker/simulate.py) who search the real HTTP server and send their events.

1. log: training shoppers browse a server with no model (the prior personalizes their
   searches; each is also asked anonymously, which measures the prior);
2. train on their log: a non-personal model, a personal model with position-bias
   correction, one on raw clicks and one with the neural profile input (`python -m ranker train --events`);
3. evaluate on other shoppers, one server per model: every search is asked with the
   shopper's id and anonymously, the shopper reacts to what it was shown and sends the
   events; shoppers are erased between runs (DELETE /users/<id>).

Searches are sliced by the shopper's engagement events before them: 0, 1-4, 5 or more.
Every figure is a mean over the slice's searches of nDCG@10 against the shopper's hidden
relevance, the probability of a click, and expected purchases.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from indexer.backends import open_backend
from indexer.demo_catalog import write_demo_catalog
from indexer.publish import ensure_indexed
from ranker.simulate import Catalog, Client, Outcome, SearchRecord, run_shopper

SLICES = (("0 events", 0, 0), ("1-4 events", 1, 4), ("5+ events", 5, 10**9))
MARKER = ".shoprank-simulation"
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    train_shoppers: int = 300
    eval_shoppers: int = 150
    searches: int = 12  # per shopper
    seed: int = 1
    threads: int = 4  # shoppers browsing at once


@contextlib.contextmanager
def serving(data_dir: Path, env: dict[str, str], port: int) -> Iterator[Client]:
    """`python -m web` on `data_dir` (two workers) until the block ends."""
    process = subprocess.Popen([sys.executable, "-m", "web", "--data-dir", str(data_dir), "--port", str(port),
                                "--workers", "2"], cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Client(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server on {data_dir} exited with {process.returncode}")
            with contextlib.suppress(OSError):
                client.health()
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in 120 s")
            time.sleep(0.2)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def prepare(data_dir: Path, catalog: Path | None) -> None:
    """A scratch data dir of the command's own: the demo catalog indexed, no models, no events."""
    if data_dir.exists() and any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
        raise SystemExit(f"error: {data_dir} is not empty and not a simulation directory: the simulation writes "
                         f"its own models and events, so give it a directory of its own")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by python -m ranker evaluate-personalization\n")
    for stale in ("rankers", "simulation-models"):
        shutil.rmtree(data_dir / stale, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"events.sqlite{suffix}").unlink(missing_ok=True)
    if catalog is None:
        catalog = data_dir / "demo-catalog.jsonl"
        if not catalog.exists():
            write_demo_catalog(catalog)
    ensure_indexed(open_backend(data_dir), catalog, None)


def browse_all(client: Client, catalog: Catalog, population: str, sizes: Sizes, shoppers: int,
               desc: str, **options: Any) -> list[SearchRecord]:
    with ThreadPoolExecutor(sizes.threads) as pool:
        jobs = [pool.submit(run_shopper, client, catalog, population, s, sizes.searches, sizes.seed, **options)
                for s in range(shoppers)]
        records = []
        for job in tqdm(jobs, desc=desc, unit="shopper", leave=False, disable=None):
            records.extend(job.result())
    return records


def train(data_dir: Path, env: dict[str, str], *flags: str) -> str:
    """One `python -m ranker train --events` run, as an operator runs it; returns the version."""
    from ranker.rerank import latest_model

    done = subprocess.run([sys.executable, "-m", "ranker", "train", "--events", "--data-dir", str(data_dir), *flags],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"train --events {' '.join(flags)} failed: {done.stderr[-2000:]}")
    time.sleep(1.1)  # versions are stamped to the second
    model = latest_model(data_dir)
    assert model is not None
    return model.stem.removeprefix("xgb-")


def only_model(data_dir: Path, version: str | None) -> None:
    """Leave exactly one version in DATA/rankers (the others wait beside it)."""
    rankers, parked = data_dir / "rankers", data_dir / "simulation-models"
    parked.mkdir(exist_ok=True)
    rankers.mkdir(exist_ok=True)
    for path in list(rankers.iterdir()):
        shutil.move(str(path), parked / path.name)
    if version is not None:
        for path in list(parked.iterdir()):
            if version in path.name:
                shutil.move(str(path), rankers / path.name)


@dataclass
class Figures:
    searches: int
    ndcg10: float
    ctr: float
    purchases: float

    def as_dict(self) -> dict[str, float]:
        return {"searches": self.searches, "ndcg@10": round(self.ndcg10, 4), "ctr": round(self.ctr, 4),
                "purchases_per_search": round(self.purchases, 4)}


def figures(outcomes: Sequence[Outcome]) -> Figures:
    n = max(1, len(outcomes))
    return Figures(len(outcomes), sum(o.ndcg10 for o in outcomes) / n, sum(o.ctr for o in outcomes) / n,
                   sum(o.purchases for o in outcomes) / n)


def by_slice(records: Sequence[SearchRecord], pick: Callable[[SearchRecord], Outcome | None],
             slice_of: Callable[[SearchRecord], int] = lambda r: r.past_events) -> dict[str, dict[str, float]]:
    out = {}
    for name, low, high in SLICES:
        chosen = [o for r in records if low <= slice_of(r) <= high and (o := pick(r)) is not None]
        out[name] = figures(chosen).as_dict()
    out["all"] = figures([o for r in records if (o := pick(r)) is not None]).as_dict()
    return out


def evaluate_personalization(data_dir: Path, sizes: Sizes, catalog_file: Path | None = None,
                             port: int = 8765) -> dict[str, Any]:
    prepare(data_dir, catalog_file)
    reader = open_backend(data_dir).reader()
    catalog = Catalog(reader.catalog().products)
    env = {"SHOPRANK_EVENTS_DB": str(data_dir / "events.sqlite"), "SHOPRANK_EVENTS_SYNC": "normal"}
    started = time.perf_counter()
    with serving(data_dir, {**env, "SHOPRANK_PERSONAL_PRIOR": "0.5"}, port) as client:
        logged = browse_all(client, catalog, "train", sizes, sizes.train_shoppers, "log")
    seconds = {"log": time.perf_counter() - started}

    mark = time.perf_counter()
    versions = {"non-personal": train(data_dir, env, "--no-personal"), "personal": train(data_dir, env),
                "personal, raw clicks": train(data_dir, env, "--naive-clicks"),
                "personal + neural profile input": train(data_dir, env, "--personal-neural")}
    seconds["train"] = time.perf_counter() - mark

    runs: dict[str, list[SearchRecord]] = {}
    for name, version in versions.items():
        mark = time.perf_counter()
        only_model(data_dir, version)
        with serving(data_dir, {**env, "SHOPRANK_PERSONAL_PRIOR": "0"}, port) as client:
            health = client.health()
            assert health["ranker"] == version, health
            personal = name != "non-personal"
            runs[name] = browse_all(client, catalog, "eval", sizes, sizes.eval_shoppers, name,
                                    personal=personal, compare_anonymous=personal)
            for shopper in range(sizes.eval_shoppers):
                client.erase(f"eval-{shopper}")
        seconds[name] = time.perf_counter() - mark
    only_model(data_dir, versions["personal"])  # the directory ends serving the personal model

    baseline = {(r.shopper, r.number): r.shown for r in runs["non-personal"]}
    personal = runs["personal"]
    results = {
        "prior, no model (log phase: training shoppers)": by_slice(logged, lambda r: r.shown),
        "recall order, anonymous (log phase)": by_slice(logged, lambda r: r.anonymous),
        "non-personal model (events)": by_slice(personal, lambda r: baseline.get((r.shopper, r.number))),
        "personal model, anonymous": by_slice(personal, lambda r: r.anonymous),
        "personal model (debiased)": by_slice(personal, lambda r: r.shown),
        "personal model, raw clicks": by_slice(runs["personal, raw clicks"], lambda r: r.shown),
        "personal model + neural profile input": by_slice(runs["personal + neural profile input"],
                                                          lambda r: r.shown),
        "oracle: anonymous top 30 in the hidden order": by_slice(personal, lambda r: r.oracle),
    }
    return {"sizes": sizes.__dict__, "versions": versions, "results": results,
            "gains": gains(results), "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def _relative(new: float, old: float) -> float:
    return round(100.0 * (new / old - 1.0), 2) if old > 0 else 0.0


def gains(results: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Relative nDCG@10 changes, in percent, per slice."""
    def change(new: str, old: str) -> dict[str, float]:
        return {s: _relative(results[new][s]["ndcg@10"], results[old][s]["ndcg@10"]) for s in results[new]}

    return {
        "personal vs non-personal model": change("personal model (debiased)", "non-personal model (events)"),
        "personal vs the same model anonymous": change("personal model (debiased)", "personal model, anonymous"),
        "anonymous searches: personal model vs non-personal model": change("personal model, anonymous",
                                                                           "non-personal model (events)"),
        "debiased vs raw clicks": change("personal model (debiased)", "personal model, raw clicks"),
        "neural profile input vs personal trees alone": change("personal model + neural profile input",
                                                               "personal model (debiased)"),
        "oracle (perfect knowledge of the taste) vs anonymous": change(
            "oracle: anonymous top 30 in the hidden order", "personal model, anonymous"),
        "prior vs recall order": change("prior, no model (log phase: training shoppers)",
                                        "recall order, anonymous (log phase)"),
    }


def render(report: dict[str, Any]) -> str:
    lines = [f"{'system':<50} {'slice':<11} {'searches':>8} {'nDCG@10':>8} {'CTR':>7} {'buys/search':>11}"]
    for system, slices in report["results"].items():
        for name, f in slices.items():
            lines.append(f"{system:<50} {name:<11} {f['searches']:>8} {f['ndcg@10']:>8.4f} {f['ctr']:>7.4f} "
                         f"{f['purchases_per_search']:>11.4f}")
    lines.append("\nrelative nDCG@10 change, % (slice: engagement events the shopper had sent before the search)")
    for name, slices in report["gains"].items():
        lines.append(f"{name:<58} " + "  ".join(f"{s} {v:+.2f}" for s, v in slices.items()))
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps(report, indent=2))
