"""The ranking model in the OpenSearch Learning-to-Rank plugin's format, so that a
cluster can rescore inside OpenSearch (an `sltr` rescore query) without ShopRank's
process in the path.

A plugin feature is a templated query whose score is the feature's value, so only
features a query can compute are in the exported set: BM25 combined and per search
field, the vector cosine (a painless `cosineSimilarity` script: 1 + cosine, since a query
score may not be negative) and the product signals (`function_score` over the field).
The features that need ShopRank's own analysis (units, trigrams, recall ranks, the
neural score, personalization) are not, so the exported model is a separate, smaller
XGBoost model trained on the same rows; `python -m ranker evaluate` cross-validates it
beside the served one ("hybrid + xgboost (LTR feature set)" in the ablation) and `train`
writes both request bodies with every version. The served ranking stays ShopRank's own.

Values are trained as the cluster computes them (`plugin_values`), so the trees'
thresholds need no translation: the vector feature is 1 + cosine, and a product with no
price scores 0, not ShopRank's -1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from indexer.mapping import IndexDefinition
from indexer.store.opensearch_bodies import text_query
from ranker.features.names import FEATURE_INDEX, SEARCH_FIELD_FEATURES

LTR_FEATURES: tuple[str, ...] = (
    "bm25_combined", *(f"bm25_{f}" for f in SEARCH_FIELD_FEATURES), "vector_cosine",
    "log_price", "rating", "has_rating", "log_review_count", "log_popularity",
)
PARAMS = ["keywords", "query_vector"]  # the sltr params: the searched text and its vector as JSON text
_VECTOR_SLOT = "@query_vector@"  # replaced by an unescaped mustache tag: the vector is an array, not a string


def _field_value(field: str, modifier: str) -> dict[str, Any]:
    return {"function_score": {"query": {"match_all": {}}, "boost_mode": "replace", "functions": [
        {"field_value_factor": {"field": field, "modifier": modifier, "missing": 0}}]}}


def feature_templates(definition: IndexDefinition) -> dict[str, dict[str, Any]]:
    """Feature name -> the query whose score is that feature, `{{keywords}}` for the text."""
    keywords = "{{keywords}}"
    templates: dict[str, dict[str, Any]] = {"bm25_combined": text_query(definition, keywords)}
    templates.update({f"bm25_{path}": {"match": {path: keywords}} for path in SEARCH_FIELD_FEATURES})
    templates["vector_cosine"] = {"script_score": {"query": {"match_all": {}}, "script": {
        "lang": "painless", "source": "1.0 + cosineSimilarity(params.query_value, doc[params.field])",
        "params": {"field": definition.vector_field, "query_value": _VECTOR_SLOT}}}}
    templates["log_price"] = _field_value("price", "ln1p")
    templates["rating"] = _field_value("rating", "none")
    templates["has_rating"] = {"constant_score": {"filter": {"exists": {"field": "rating"}}}}
    templates["log_review_count"] = _field_value("review_count", "ln1p")
    templates["log_popularity"] = _field_value("popularity", "ln1p")
    return templates


def _mustache(template: dict[str, Any]) -> dict[str, Any] | str:
    """A template as the plugin stores it: an object, or, where the vector goes in, JSON
    text with a triple-mustache tag (rendered unescaped, so the array stays an array)."""
    text = json.dumps(template)
    return text.replace(json.dumps(_VECTOR_SLOT), "{{{query_vector}}}") if _VECTOR_SLOT in text else template


def featureset_body(definition: IndexDefinition, name: str) -> dict[str, Any]:
    """`PUT _ltr/_featureset/{name}`."""
    templates = feature_templates(definition)
    return {"featureset": {"name": name, "features": [
        {"name": feature, "params": PARAMS, "template_language": "mustache", "template": _mustache(templates[feature])}
        for feature in LTR_FEATURES]}}


def model_body(model: xgb.Booster, name: str) -> dict[str, Any]:
    """`POST _ltr/_featureset/{featureset}/_createmodel`: the trees as XGBoost dumps them,
    splitting on the feature set's names. The plugin adds no base score: a constant, so
    the order is XGBoost's."""
    named = model.copy()
    named.feature_names = list(LTR_FEATURES)
    trees = [json.loads(tree) for tree in named.get_dump(dump_format="json")]
    return {"model": {"name": name, "model": {"type": "model/xgboost+json", "definition": json.dumps(trees)}}}


def sltr_rescore(model_name: str, text: str, vector: np.ndarray, window: int) -> dict[str, Any]:
    """The `rescore` clause of a search: the model's score replaces the first pass's."""
    params = {"keywords": text, "query_vector": json.dumps([round(float(x), 6) for x in vector])}
    return {"window_size": window, "query": {"rescore_query": {"sltr": {"model": model_name, "params": params}},
                                             "query_weight": 0.0, "rescore_query_weight": 1.0}}


def plugin_values(features: np.ndarray) -> np.ndarray:
    """ShopRank's feature matrix -> the exported features' values as the cluster computes them."""
    out = features[:, [FEATURE_INDEX[name] for name in LTR_FEATURES]].copy()
    out[:, LTR_FEATURES.index("vector_cosine")] += 1.0
    price = LTR_FEATURES.index("log_price")
    out[:, price] = np.maximum(out[:, price], 0.0)  # no price: the field_value_factor's `missing` 0
    return out


def write_ltr_bodies(out_dir: Path, version: str, definition: IndexDefinition, model: xgb.Booster) -> dict[str, str]:
    """Both request bodies next to the version's other files; returns the meta entries."""
    name = f"shoprank-{version}"
    files = {"ltr_featureset": f"ltr-featureset-{version}.json", "ltr_model": f"ltr-model-{version}.json"}
    (out_dir / files["ltr_featureset"]).write_text(json.dumps(featureset_body(definition, name), indent=1))
    (out_dir / files["ltr_model"]).write_text(json.dumps(model_body(model, name), indent=1))
    return {**files, "ltr_name": name}


def upload(client: Any, settings: Any, featureset: dict[str, Any], model: dict[str, Any]) -> None:
    """The feature set, then the model made from it, creating the default feature store
    the first time. A cluster without the plugin, or any refusal, raises
    BackendUnavailable with one clear message."""
    from opensearchpy.exceptions import TransportError

    from indexer.store.base import BackendUnavailable
    from indexer.store.opensearch_client import describe

    name = featureset["featureset"]["name"]
    try:
        if not any("ltr" in str(p.get("component", "")) for p in client.cat.plugins(format="json")):
            raise BackendUnavailable(f"OpenSearch at {settings.url} has no Learning to Rank plugin "
                                     "(opensearch-ltr): install it on every node first")
        if not client.ltr.list_stores().get("stores"):
            client.ltr.create_default_store()
        client.ltr.create_featureset(id=name, body=featureset)
        client.ltr.create_model_from_set(name=name, body=model)
    except TransportError as exc:
        raise BackendUnavailable(describe(exc, settings)) from exc
