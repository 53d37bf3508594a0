"""The personalize stage in the search pipeline, over a real event store: the gate (no
profile, a thin one: the anonymous ranking bit for bit), the prior while no personal
model is served, a model trained by `train --events` from a replayed log (no later event
leaks into an earlier search's features), and a click through HTTP that changes the
shopper's next results within a second."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

from ranker.events.facts import facts_from
from ranker.events.schema import parse_event
from ranker.events.store import EventStore, Search
from ranker.pipeline import PersonalSettings, SearchPipeline
from ranker.request import SearchRequest, Shopper
from tests.conftest import copy_data_dir
from tests.test_events_api import post_events

QUERY = "sofa"


def ranking(pipeline: SearchPipeline, shopper: Shopper | None = None, query: str = QUERY, **options):  # type: ignore[no-untyped-def]
    response = pipeline.search(SearchRequest(query, k=20, explain=True, shopper=shopper or Shopper(), **options))
    return [(r["id"], r["score"], json.dumps(r["explain"], sort_keys=True)) for r in response.results]


def engage(store: EventStore, reader, user: str, actions: list[tuple[str, str]], at: float | None = None) -> None:  # type: ignore[no-untyped-def]
    now = at or time.time()
    events = [parse_event({"action_name": a, "user_id": user, "object_id": p, "timestamp": (now + n / 1000) * 1000},
                          now) for n, (a, p) in enumerate(actions)]  # numbers are epoch milliseconds
    store.add(events, facts_from(reader))


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(tmp_path / "events.sqlite", sync="normal")


def test_no_profile_or_a_thin_one_ranks_exactly_as_anonymous(demo_reader, shipped_encoder, store) -> None:  # type: ignore[no-untyped-def]
    pipeline = SearchPipeline(demo_reader, shipped_encoder, profiles=store,
                              personal=PersonalSettings(min_evidence=2.5))
    anonymous = ranking(pipeline)
    product = anonymous[5][0]
    engage(store, demo_reader, "thin", [("click", product), ("click", product)])  # evidence 2 < 2.5
    for shopper in (Shopper("never-seen"), Shopper(session_id="s-unknown"), Shopper("thin")):
        assert ranking(pipeline, shopper) == anonymous  # ids, scores and every explained value
    engage(store, demo_reader, "thin", [("click", product)])  # evidence 3 (decaying): past the gate
    assert ranking(pipeline, Shopper("thin")) != anonymous


def test_the_prior_lifts_what_the_shopper_engaged_with(demo_reader, shipped_encoder, store) -> None:  # type: ignore[no-untyped-def]
    pipeline = SearchPipeline(demo_reader, shipped_encoder, profiles=store)
    anonymous = [r[0] for r in ranking(pipeline)]
    products = {p["id"]: p for p in demo_reader.products(anonymous)}
    low = anonymous[12]
    brand = products[low]["brand"]
    engage(store, demo_reader, "fan", [("purchase", low)])
    personal = [r[0] for r in ranking(pipeline, Shopper("fan"))]
    products.update({p["id"]: p for p in demo_reader.products(personal)})  # the prior reaches past the first 20
    assert personal.index(low) < anonymous.index(low)
    moved_up = [i for i in personal[:10] if i not in anonymous[:10]]
    assert moved_up and all(products[i]["brand"] == brand or i == low for i in moved_up[:3])
    off = SearchPipeline(demo_reader, shipped_encoder, profiles=store, personal=PersonalSettings(prior_strength=0))
    assert [r[0] for r in ranking(off, Shopper("fan"))] == anonymous


def test_a_profile_counts_only_up_to_its_search(demo_index: Path, tmp_path: Path) -> None:
    """The replay gives each logged search the profile as it stood then."""
    from indexer.backends import open_backend
    from ranker.training.fit import TrainingSet
    from ranker.training.from_events import replay_groups

    data_dir = copy_data_dir(demo_index, tmp_path / "data")
    data, _ = TrainingSet.open(open_backend(data_dir), None, depth=30)
    store = EventStore(tmp_path / "log.sqlite", sync="normal")
    ids = [p["id"] for p in data.catalog.products[:20]]
    store.record_search(Search("q1", 100.0, "u1", None, QUERY, ids[:10]))
    engage(store, data.reader, "u1", [("click", ids[3])], at=110.0)
    engage(store, data.reader, "u1", [("purchase", ids[15])], at=120.0)  # after q1, before q2
    store.record_search(Search("q2", 130.0, "u1", None, QUERY, ids[10:20]))
    engage(store, data.reader, "u1", [("add_to_cart", ids[12])], at=140.0)
    store.add([parse_event({"action_name": "click", "user_id": "u1", "object_id": ids[3], "query_id": "q1",
                            "position": 4, "timestamp": 110_000}, 0.0),
               parse_event({"action_name": "add_to_cart", "user_id": "u1", "object_id": ids[12], "query_id": "q2",
                            "position": 3, "timestamp": 140_000}, 0.0)], facts_from(data.reader))
    groups = {g.query_id: g for g in replay_groups(store, data, min_evidence=0.5, progress=False)}
    assert list(groups["q1"].labels) == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert list(groups["q2"].labels) == [0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
    assert groups["q1"].view is None  # nothing had happened before q1
    q2 = groups["q2"].view
    assert q2 is not None and set(q2.products) == {ids[3], ids[15]}  # not the cart that came after it


def simulate_log(data_dir: Path, shoppers: int, searches: int) -> None:
    """Shoppers of ranker.simulate browsing the pipeline in process, logged as the server logs."""
    from indexer import settings
    from indexer.backends import open_backend
    from indexer.encoder import TextEncoder
    from ranker.simulate import Catalog, browse, new_taste, next_query, seeded

    reader = open_backend(data_dir).reader()
    store = EventStore(settings.events_path(data_dir), sync="normal")
    pipeline = SearchPipeline(reader, TextEncoder(settings.models_dir(data_dir), reader.encoder_variant, threads=1),
                              profiles=store)
    catalog, facts = Catalog(reader.catalog().products), facts_from(reader)
    clock = 1_000_000.0
    for s in range(shoppers):
        taste, queries = new_taste(seeded(0, s)), seeded(0, s, "queries")
        for j in range(searches):
            query = next_query(taste, queries)
            response = pipeline.search(SearchRequest(query.text, shopper=Shopper(f"u{s}")))
            shown = [r["id"] for r in response.results]
            clock += 10
            store.record_search(Search(response.query_id, clock, f"u{s}", None, query.text, shown))
            outcome = browse(taste, catalog, query, shown, seeded(0, s, j))
            events = [parse_event({"action_name": e.action, "user_id": f"u{s}", "object_id": e.product,
                                   "position": e.position, "query_id": response.query_id,
                                   "timestamp": (clock + 1 + n) * 1000}, 0.0) for n, e in enumerate(outcome.engaged)]
            if events:
                store.add(events, facts)
            clock += 10


def test_train_events_serves_a_personal_model(demo_index: Path, tmp_path: Path, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    from indexer.backends import open_backend
    from ranker.__main__ import main
    from ranker.rerank import LearnedRanker, latest_model, meta_path

    data_dir = copy_data_dir(demo_index, tmp_path / "data")
    assert main(["train", "--events", "--data-dir", str(data_dir)]) == 1  # no log yet: a clear error
    simulate_log(data_dir, shoppers=24, searches=6)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", "--events", "--data-dir", str(data_dir)]) == 0
    assert "searches with engagement" in out.getvalue()
    model = latest_model(data_dir)
    assert model is not None
    meta = json.loads(meta_path(model).read_text())
    assert meta["personal"] is True and meta["labels"] == "events" and meta["settings"]["chosen_by"] == "events"
    assert meta["position_bias"] == "XGBoost unbiased LambdaMART" and meta["personal_searches"] > 0
    assert meta["serve_depth"] == 30
    # the version's own trees never saw a profile; its personal trees rank admitted searches only
    assert (model.parent / meta["personal_trees"]).exists() and meta["personal_tree_count"] >= 60

    reader = open_backend(data_dir).reader()
    from ranker.features.sources import feature_source

    ranker = LearnedRanker(model, feature_source(reader), reader.encoder_variant)
    assert ranker.personal
    store = EventStore(tmp_path / "serving.sqlite", sync="normal")
    pipeline = SearchPipeline(reader, shipped_encoder, ranker=ranker, profiles=store)
    anonymous = ranking(pipeline)
    assert ranking(pipeline, Shopper("new")) == anonymous  # a new shopper loses nothing
    engage(store, reader, "buyer", [("purchase", anonymous[-1][0]), ("add_to_cart", anonymous[-2][0])])
    personal = ranking(pipeline, Shopper("buyer"))
    assert [r[0] for r in personal] != [r[0] for r in anonymous]
    features = json.loads(personal[0][2])["features"]
    assert features["personal_evidence"] == pytest.approx(np.log1p(8.0), rel=1e-4)
    # the stage re-scores only its own columns: the rest of each row is the rerank stage's
    plain = {r[0]: json.loads(r[2])["features"] for r in anonymous}
    for pid, _score, explain in personal:
        if pid in plain:
            mine = {k: v for k, v in json.loads(explain)["features"].items() if not k.startswith("personal_")}
            assert mine == {k: v for k, v in plain[pid].items() if not k.startswith("personal_")}


def test_the_personal_neural_scorer_reads_the_profile_embedding(demo_index: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 shipped_encoder) -> None:
    """`train --events --personal-neural` fits the neural scorer with its profile input and
    keeps it when held-out shoppers rank better with it; served, the shopper's profile embedding is an
    input: two profiles give two scorings of one head, and the blend is trees + weight × it."""
    import torch

    from indexer.backends import open_backend
    from ranker.__main__ import main
    from ranker.features.names import FEATURE_INDEX
    from ranker.features.sources import feature_source
    from ranker.rerank import LearnedRanker, latest_model, meta_path
    from ranker.training.neural import NeuralScorer, export_onnx

    data_dir = copy_data_dir(demo_index, tmp_path / "data")
    simulate_log(data_dir, shoppers=20, searches=6)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["train", "--events", "--personal-neural", "--data-dir", str(data_dir)]) == 0
    assert "personal neural scorer at weight" in out.getvalue()
    model = latest_model(data_dir)
    assert model is not None
    meta = json.loads(meta_path(model).read_text())
    assert set(meta["personal_blend_ndcg"]) == {"0.0", "0.25", "0.5", "1.0", "2.0", "4.0"}
    assert (meta.get("personal_blend", 0) > 0) == ("personal_neural" in meta)
    # Whatever weight this small log chose, serve a scorer whose profile input is not zero
    # (seeded initial weights), to see the embedding reach it.
    dim = open_backend(data_dir).reader().definition.dimension
    torch.manual_seed(0)
    export_onnx(NeuralScorer(dim, np.zeros(len(FEATURE_INDEX)), np.ones(len(FEATURE_INDEX))).eval(),
                model.parent / "personal-neural-test.onnx")
    meta_path(model).write_text(json.dumps({**meta, "personal_neural": "personal-neural-test.onnx",
                                            "personal_blend": 2.0}))
    reader = open_backend(data_dir).reader()
    ranker = LearnedRanker(model, feature_source(reader), reader.encoder_variant)
    rng = np.random.default_rng(1)
    features = rng.random((12, len(FEATURE_INDEX)), dtype=np.float32)
    vectors, query = rng.random((12, dim), dtype=np.float32), rng.random(dim, dtype=np.float32)
    likes, other = rng.random(dim, dtype=np.float32), rng.random(dim, dtype=np.float32)
    first = ranker.score_personal(features, query, vectors, likes)
    assert not np.allclose(first.model_scores["personal_neural"],
                           ranker.score_personal(features, query, vectors, other).model_scores["personal_neural"])
    np.testing.assert_allclose(first.scores, first.model_scores["personal"] + 2.0 * first.model_scores["personal_neural"],
                               rtol=1e-5)
    assert "personal_neural" not in ranker.score_personal(features).model_scores  # no vectors: the trees alone
    store = EventStore(tmp_path / "serving.sqlite", sync="normal")
    pipeline = SearchPipeline(reader, shipped_encoder, ranker=ranker, profiles=store)
    anonymous = ranking(pipeline)
    engage(store, reader, "buyer", [("purchase", anonymous[-1][0]), ("click", anonymous[-2][0])])
    explained = [json.loads(r[2]) for r in ranking(pipeline, Shopper("buyer"))]
    assert any("personal_neural" in e.get("model", {}) for e in explained)
    assert all("personal_neural" not in json.loads(r[2]).get("model", {}) for r in anonymous)


def test_train_events_can_leave_features_out(demo_index: Path, tmp_path: Path) -> None:
    from indexer.backends import open_backend
    from ranker.__main__ import main
    from ranker.features.names import FEATURE_INDEX
    from ranker.features.sources import feature_source
    from ranker.rerank import LearnedRanker, latest_model, meta_path

    data_dir = copy_data_dir(demo_index, tmp_path / "data")
    simulate_log(data_dir, shoppers=12, searches=5)
    assert main(["train", "--events", "--data-dir", str(data_dir), "--ignore", "no_such_feature"]) == 1
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--events", "--data-dir", str(data_dir), "--ignore", "log_recall_rank,in_stock"]) == 0
    model = latest_model(data_dir)
    assert model is not None
    assert json.loads(meta_path(model).read_text())["ignored_features"] == ["log_recall_rank", "in_stock"]
    reader = open_backend(data_dir).reader()
    ranker = LearnedRanker(model, feature_source(reader), reader.encoder_variant)
    rng = np.random.default_rng(0)
    features = rng.random((20, len(FEATURE_INDEX)), dtype=np.float32)
    vectors = rng.random((20, reader.definition.dimension), dtype=np.float32)
    changed = features.copy()
    changed[:, [FEATURE_INDEX["log_recall_rank"], FEATURE_INDEX["in_stock"]]] = rng.random((20, 2))
    query = vectors[0]
    assert np.array_equal(ranker.score(query, features, vectors).scores, ranker.score(query, changed, vectors).scores)


def test_a_click_over_http_changes_the_next_results_within_a_second(fresh_index: Path, make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(fresh_index)
    before = [r["id"] for r in server.get(f"/search?q={QUERY}&k=20&user_id=clicker")[1]["results"]]
    anonymous = [r["id"] for r in server.get(f"/search?q={QUERY}&k=20")[1]["results"]]
    assert before == anonymous  # nothing known of the shopper yet
    clicked = before[15]
    started = time.monotonic()
    status, answer = post_events(server.base, {"action_name": "click", "user_id": "clicker", "object_id": clicked,
                                               "position": 16})
    assert status == 200 and answer["accepted"] == 1
    after = [r["id"] for r in server.get(f"/search?q={QUERY}&k=20&user_id=clicker")[1]["results"]]
    elapsed = time.monotonic() - started
    assert after.index(clicked) < before.index(clicked) and elapsed < 1.0
    assert [r["id"] for r in server.get(f"/search?q={QUERY}&k=20")[1]["results"]] == anonymous
