"""`python -m ranker evaluate-personalization` end to end, small: simulated shoppers
search a real server, four models are trained on their log and each is measured on
other shoppers; and the simulator's shoppers react to what they are shown."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ranker.simulate import EXAMINATION, Catalog, browse, fit, new_taste, next_query, relevance, seeded
from tests.conftest import free_port


def test_shoppers_prefer_what_suits_them(demo_products) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(demo_products)
    taste = new_taste(random.Random(4))
    query = next(q for q in (next_query(taste, random.Random(n)) for n in range(50))
                 if len(catalog.by_category[q.category]) >= 10)
    products = sorted(catalog.by_category[query.category], key=lambda p: -relevance(taste, catalog, query, p))
    best, worst = [p["id"] for p in products[:10]], [p["id"] for p in products[-10:]]
    outcomes = {name: [browse(taste, catalog, query, shown, seeded(n)) for n in range(300)]
                for name, shown in (("best", best), ("worst", worst))}
    assert outcomes["best"][0].ndcg10 == pytest.approx(1.0) and outcomes["worst"][0].ndcg10 < 0.9
    clicks = {name: sum(len(o.engaged) for o in runs) for name, runs in outcomes.items()}
    assert clicks["best"] > 2 * clicks["worst"]
    assert fit(taste, catalog, products[0]) >= fit(taste, catalog, products[-1])
    # position bias: the first result is clicked far more often than the tenth
    firsts = sum(e.position == 1 for o in outcomes["best"] for e in o.engaged if e.action == "click")
    tenths = sum(e.position == 10 for o in outcomes["best"] for e in o.engaged if e.action == "click")
    assert firsts > tenths * (EXAMINATION[0] / EXAMINATION[9]) / 3


def test_evaluate_personalization_end_to_end(tmp_path: Path, demo_catalog: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from ranker.__main__ import main
    from ranker.rerank import latest_model

    occupied = tmp_path / "shop"
    (occupied / "simulation").mkdir(parents=True)
    (occupied / "simulation" / "events.sqlite").write_text("a shop's own data")
    with pytest.raises(SystemExit, match="not a simulation directory"):
        main(["evaluate-personalization", "--data-dir", str(occupied), "--catalog", str(demo_catalog)])

    report_file = tmp_path / "report.json"
    assert main(["evaluate-personalization", "--data-dir", str(tmp_path / "data"), "--catalog", str(demo_catalog),
                 "--train-shoppers", "16", "--eval-shoppers", "6", "--searches", "5",
                 "--port", str(free_port()), "--json", str(report_file)]) == 0
    out = capsys.readouterr().out
    assert "personal vs non-personal model" in out and "debiased vs raw clicks" in out
    assert "neural profile input vs personal trees alone" in out
    report = json.loads(report_file.read_text())
    versions = report["versions"]
    assert len(set(versions.values())) == 4
    for system, slices in report["results"].items():
        assert set(slices) == {"0 events", "1-4 events", "5+ events", "all"}, system
        assert 0.0 <= slices["all"]["ndcg@10"] <= 1.0
    assert report["results"]["personal model (debiased)"]["all"]["searches"] == 6 * 5
    # a new shopper's first search is the same under the personal model, with or without an id
    first = report["results"]["personal model (debiased)"]["0 events"]
    assert first == report["results"]["personal model, anonymous"]["0 events"]
    served = latest_model(tmp_path / "data" / "simulation")
    assert served is not None and versions["personal"] in served.name
