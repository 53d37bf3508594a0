"""The Learning-to-Rank plugin export: the bodies are what the official spec accepts, the
feature templates render to valid queries, and the dumped trees score as XGBoost does."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import numpy as np
import pytest

from indexer.mapping import load_definition
from ranker.features.names import FEATURE_INDEX, FEATURE_NAMES
from ranker.ltr_export import (
    LTR_FEATURES,
    PARAMS,
    featureset_body,
    model_body,
    plugin_values,
    sltr_rescore,
)
from ranker.training.dataset import ltr_view
from ranker.training.xgboost_models import predict, train_xgboost
from tests.conftest import SHARED
from tests.ranking_helpers import exported_ranker, score_with_dump, synthetic_rows

DEFINITION = load_definition()
needs_spec = pytest.mark.skipif(not (SHARED / "opensearch-api-spec" / "spec").is_dir(),
                                reason="../shared/opensearch-api-spec is not here")


def test_values_are_what_the_cluster_computes() -> None:
    features = np.zeros((3, len(FEATURE_NAMES)), np.float32)
    features[:, FEATURE_INDEX["vector_cosine"]] = [-0.5, 0.0, 0.8]
    features[:, FEATURE_INDEX["log_price"]] = [-1.0, 0.0, np.log1p(9.0)]
    features[:, FEATURE_INDEX["bm25_title"]] = [0.0, 1.5, 7.25]
    values = plugin_values(features)
    assert values.shape == (3, len(LTR_FEATURES))
    column = {name: values[:, i] for i, name in enumerate(LTR_FEATURES)}
    np.testing.assert_allclose(column["vector_cosine"], [0.5, 1.0, 1.8])  # painless: 1 + cosine
    np.testing.assert_allclose(column["log_price"], [0.0, 0.0, np.log1p(9.0)])  # no price: `missing` 0, not -1
    np.testing.assert_allclose(column["bm25_title"], [0.0, 1.5, 7.25])
    assert not set(LTR_FEATURES) & {"log_recall_rank", "title_trigram_overlap", "units_conflict"}


def test_dumped_trees_score_as_xgboost_does() -> None:
    rows = ltr_view(synthetic_rows())
    model = train_xgboost(rows, None, {"max_depth": 4, "eta": 0.3}, rounds=25)
    body = model_body(model, "shoprank-test")
    assert body["model"]["name"] == "shoprank-test" and body["model"]["model"]["type"] == "model/xgboost+json"
    trees = json.loads(body["model"]["model"]["definition"])
    assert len(trees) == 25
    values = np.vstack([r.features for r in rows])
    ours = np.array([score_with_dump(trees, dict(zip(LTR_FEATURES, map(float, v), strict=True))) for v in values])
    xgboost = predict(model, values)
    offset = xgboost - ours  # the base score, which the plugin leaves out: a constant
    assert np.ptp(offset) < 1e-4
    assert np.ptp(ours) > 0.5  # the trees do split

    def split_names(node: dict) -> set[str]:
        return {node["split"], *(n for c in node["children"] for n in split_names(c))} if "children" in node else set()

    used = set().union(*(split_names(t) for t in trees))
    assert used <= set(LTR_FEATURES) and {"bm25_title", "vector_cosine"} <= used


def render(template: dict | str, keywords: str, vector: np.ndarray) -> dict:
    """Mustache as the plugin applies it to our two params (the vector tag is unescaped)."""
    text = template if isinstance(template, str) else json.dumps(template)
    text = text.replace("{{{query_vector}}}", json.dumps(vector.tolist()))
    return json.loads(text.replace("{{keywords}}", json.dumps(keywords)[1:-1]))


@needs_spec
def test_featureset_templates_render_to_valid_queries() -> None:
    from tests.opensearch_spec import errors, request_body_validator, schema_validator

    body = featureset_body(DEFINITION, "shoprank-v1")
    assert not errors(request_body_validator("ltr", "ltr.create_featureset"), body)
    features = body["featureset"]["features"]
    assert body["featureset"]["name"] == "shoprank-v1"
    assert [f["name"] for f in features] == list(LTR_FEATURES)
    assert all(f["params"] == PARAMS and f["template_language"] == "mustache" for f in features)
    vector = np.linspace(-1, 1, DEFINITION.dimension)
    query = schema_validator("_common.query_dsl", "QueryContainer")
    rendered = {f["name"]: render(f["template"], 'Thompson\'s 60" "stain"', vector) for f in features}
    for name, q in rendered.items():
        assert not errors(query, q), name
    assert rendered["bm25_title"] == {"match": {"title": 'Thompson\'s 60" "stain"'}}
    assert rendered["bm25_combined"]["multi_match"]["tie_breaker"] == DEFINITION.tie_breaker
    script = rendered["vector_cosine"]["script_score"]["script"]
    assert script["params"] == {"field": DEFINITION.vector_field, "query_value": vector.tolist()}
    assert script["source"] == "1.0 + cosineSimilarity(params.query_value, doc[params.field])"
    price = rendered["log_price"]["function_score"]["functions"][0]["field_value_factor"]
    assert price == {"field": "price", "modifier": "ln1p", "missing": 0}


@needs_spec
def test_model_and_rescore_bodies_match_the_spec() -> None:
    from tests.opensearch_spec import errors, request_body_validator

    model = train_xgboost(ltr_view(synthetic_rows(queries=20)), None, {"max_depth": 3}, rounds=3)
    assert not errors(request_body_validator("ltr", "ltr.create_model_from_set"), model_body(model, "m"))
    vector = np.linspace(-1, 1, DEFINITION.dimension).astype(np.float32)
    search = {"query": {"match": {"title": "stain"}}, "rescore": sltr_rescore("m", "stain", vector, 100)}
    assert not errors(request_body_validator("_core", "search"), search)
    sltr = search["rescore"]["query"]["rescore_query"]["sltr"]
    assert sltr["model"] == "m" and set(sltr["params"]) == set(PARAMS)
    np.testing.assert_allclose(json.loads(sltr["params"]["query_vector"]), vector, atol=1e-6)
    assert search["rescore"]["query"]["query_weight"] == 0.0  # the model's score alone orders the window


@pytest.mark.skipif(not os.environ.get("OPENSEARCH_URL"),
                    reason="OPENSEARCH_URL is not set: no OpenSearch cluster to test against (see docs/opensearch.md)")
def test_a_live_cluster_rescores_as_the_export_says(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    demo_catalog: Path, shipped_encoder, models_dir: Path) -> None:
    """The plugin computes each feature from its template and walks the uploaded trees: its
    `sltr` scores are what ShopRank's features (from the same cluster) and the dump give."""
    from indexer.__main__ import main as indexer_main
    from indexer.backends import open_backend
    from indexer.store.opensearch_bodies import text_query
    from ranker.__main__ import main as ranker_main
    from ranker.features.compute import CandidateRanks
    from ranker.features.sources import RequestFeatures, features_for

    alias = f"shoprank-test-{secrets.token_hex(4)}"
    monkeypatch.setenv("SHOPRANK_BACKEND", "opensearch")
    monkeypatch.setenv("OPENSEARCH_ALIAS", alias)
    assert indexer_main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == 0
    reader = open_backend(tmp_path).reader()
    client = reader.client
    try:
        if not any("ltr" in str(p.get("component")) for p in client.cat.plugins(format="json")):
            pytest.skip("the cluster has no Learning to Rank plugin (not on Maven Central: the development "
                        "cluster cannot have it; docs/opensearch.md)")
        meta = exported_ranker(tmp_path, secrets.token_hex(4))
        assert ranker_main(["ltr-upload", "--data-dir", str(tmp_path)]) == 0
        query = "cordless drill"
        vector = shipped_encoder.encode_query(query)
        body = {"size": 20, "query": text_query(DEFINITION, query), "rescore": sltr_rescore(meta["ltr_name"], query, vector, 20)}
        hits = client.search(index=alias, body=body)["hits"]["hits"]
        ids = [h["_id"] for h in hits]
        ranks = np.arange(1, len(ids) + 1, dtype=np.float64)
        features, _ = features_for(RequestFeatures(reader), query, vector, CandidateRanks(ids, ranks, ranks, ranks))
        model = json.loads((tmp_path / "rankers" / meta["ltr_model"]).read_text())
        trees = json.loads(model["model"]["model"]["definition"])
        expected = [score_with_dump(trees, dict(zip(LTR_FEATURES, map(float, v), strict=True)))
                    for v in plugin_values(features)]
        np.testing.assert_allclose([h["_score"] for h in hits], expected, rtol=1e-3, atol=1e-3)
    finally:
        client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
