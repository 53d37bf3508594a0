"""The one index definition, `mappings/products.json`, read into what the code needs.

The file is an OpenSearch index body, so the OpenSearch backend sends it as it is. The
embedded backend derives its tantivy schema from it here. ShopRank's own query-time
settings (field boosts, facets) live under `mappings._meta.shoprank`, which OpenSearch
stores and ignores, so there is still only one copy of the schema.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

MAPPING_PATH = Path(__file__).resolve().parent.parent / "mappings" / "products.json"


class MappingError(ValueError):
    """The index definition uses something a backend cannot honour."""


@dataclass(frozen=True)
class FieldSpec:
    """One indexed field; a multi-field such as `brand.text` is its own FieldSpec."""

    path: str
    type: str
    analyzer: str | None = None
    indexed: bool = True


@dataclass(frozen=True)
class FacetSpec:
    name: str
    field: str
    size: int = 20
    edges: tuple[float, ...] = ()
    # A grouped facet (attributes): its buckets are "key<PAIR_SEPARATOR>value" pairs, shown
    # as one facet per key, the `keys` keys covering most of the matching set, with their
    # `values` most common values each.
    keys: int = 0
    values: int = 0


@dataclass(frozen=True)
class IndexDefinition:
    body: dict[str, Any]
    fields: dict[str, FieldSpec]
    analyzers: dict[str, dict[str, Any]]
    search_fields: dict[str, float]
    tie_breaker: float
    vector_field: str
    dimension: int
    hnsw_m: int
    hnsw_ef_construction: int
    facets: dict[str, FacetSpec] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Names this index definition: a generation records the one it was built with, so
        an index built before a mapping change is rebuilt rather than served half-fitting."""
        return hashlib.sha256(json.dumps(self.body, sort_keys=True).encode()).hexdigest()[:16]

    def field(self, path: str) -> FieldSpec:
        try:
            return self.fields[path]
        except KeyError:
            raise MappingError(f"field {path!r} is not defined in {MAPPING_PATH.name}") from None


def _walk_properties(properties: dict[str, Any], prefix: str = "") -> dict[str, FieldSpec]:
    fields: dict[str, FieldSpec] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        ftype = spec.get("type", "object")
        fields[path] = FieldSpec(path, ftype, spec.get("analyzer"), spec.get("index", True))
        for sub_name, sub_spec in spec.get("fields", {}).items():
            sub_path = f"{path}.{sub_name}"
            fields[sub_path] = FieldSpec(sub_path, sub_spec["type"], sub_spec.get("analyzer"))
        if "properties" in spec:
            fields.update(_walk_properties(spec["properties"], prefix=f"{path}."))
    return fields


def parse_definition(body: dict[str, Any]) -> IndexDefinition:
    mappings = body["mappings"]
    fields = _walk_properties(mappings["properties"])
    meta = mappings.get("_meta", {}).get("shoprank", {})
    analyzers = body.get("settings", {}).get("analysis", {}).get("analyzer", {})

    vector_field = meta.get("vector_field", "embedding")
    vector_spec = mappings["properties"].get(vector_field)
    if not vector_spec or vector_spec.get("type") != "knn_vector":
        raise MappingError(f"vector field {vector_field!r} must be a knn_vector")
    params = vector_spec.get("method", {}).get("parameters", {})

    search_fields = {str(k): float(v) for k, v in meta.get("search_fields", {}).items()}
    for path in search_fields:
        if path not in fields or fields[path].type != "text":
            raise MappingError(f"search field {path!r} must be a text field in the mapping")

    facets = {
        name: FacetSpec(name, spec["field"], int(spec.get("size", 20)), tuple(spec.get("edges", ())),
                        int(spec.get("keys", 0)), int(spec.get("values", 0)))
        for name, spec in meta.get("facets", {}).items()
    }
    return IndexDefinition(
        body=body,
        fields=fields,
        analyzers=analyzers,
        search_fields=search_fields,
        tie_breaker=float(meta.get("multi_match", {}).get("tie_breaker", 0.0)),
        vector_field=vector_field,
        dimension=int(vector_spec["dimension"]),
        hnsw_m=int(params.get("m", 32)),
        hnsw_ef_construction=int(params.get("ef_construction", 128)),
        facets=facets,
    )


@dataclass(frozen=True)
class FusionDefaults:
    """Fusion settings, read from the search-pipeline bodies in mappings/ so the embedded
    backend and an OpenSearch cluster fuse with the same numbers."""

    lexical_weight: float
    vector_weight: float
    rrf_k: float


@lru_cache(maxsize=1)
def load_fusion_defaults() -> FusionDefaults:
    weighted = json.loads((MAPPING_PATH.parent / "search-pipeline-weighted.json").read_text())
    rrf = json.loads((MAPPING_PATH.parent / "search-pipeline-rrf.json").read_text())
    weights = weighted["phase_results_processors"][0]["normalization-processor"]["combination"]["parameters"]["weights"]
    rank_constant = rrf["phase_results_processors"][0]["score-ranker-processor"]["combination"]["rank_constant"]
    return FusionDefaults(float(weights[0]), float(weights[1]), float(rank_constant))


@lru_cache(maxsize=4)
def load_definition(path: Path = MAPPING_PATH) -> IndexDefinition:
    with open(path, encoding="utf-8") as fh:
        return parse_definition(json.load(fh))
