"""The feature matrix of one query's candidates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer.mapping import IndexDefinition
from ranker.features.names import FEATURE_INDEX, FEATURE_NAMES, PERSONAL_START, SEARCH_FIELD_FEATURES
from ranker.features.personal import PersonalView
from ranker.features.product_table import ProductTable
from ranker.features.token_bags import char_trigrams
from ranker.features.units import unit_kind, unit_tokens


@dataclass
class CandidateRanks:
    """A query's candidates with what recall knew about them (NaN: that side missed it)."""

    ids: list[str]
    recall_rank: np.ndarray
    bm25_rank: np.ndarray
    vector_rank: np.ndarray


def _log_rank(ranks: np.ndarray, missing: float) -> np.ndarray:
    return np.log1p(np.where(np.isnan(ranks), missing, ranks)).astype(np.float32)


def compute_features(query: str, query_vector: np.ndarray, candidates: CandidateRanks, inputs: FeatureInputs,
                     definition: IndexDefinition, view: PersonalView | None = None) -> np.ndarray:
    """The (n_candidates, len(FEATURE_NAMES)) float32 matrix for one query; the personal
    columns are 0 without a `view` of the shopper's profile."""
    n = len(candidates.ids)
    table, text_scores, vectors, rows = inputs.table, inputs.text_scores, inputs.vectors, inputs.rows
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if n == 0:
        return out
    depth_missing = float(max(n, 100) + 1)

    out[:, FEATURE_INDEX["bm25_combined"]] = text_scores.get("combined", 0.0)
    for field in SEARCH_FIELD_FEATURES:
        if field in text_scores:
            out[:, FEATURE_INDEX[f"bm25_{field}"]] = text_scores[field]
    out[:, FEATURE_INDEX["vector_cosine"]] = vectors @ query_vector
    out[:, FEATURE_INDEX["log_recall_rank"]] = _log_rank(candidates.recall_rank, depth_missing)
    out[:, FEATURE_INDEX["log_bm25_rank"]] = _log_rank(candidates.bm25_rank, depth_missing)
    out[:, FEATURE_INDEX["log_vector_rank"]] = _log_rank(candidates.vector_rank, depth_missing)

    query_tokens = list(dict.fromkeys(table.analyze(query)))
    query_ids = table.token_ids(query_tokens, table.vocabulary)
    title_lengths = table.title_tokens.lengths(rows).astype(np.float32)
    overlap = table.title_tokens.count_in(rows, query_ids)
    out[:, FEATURE_INDEX["title_query_overlap"]] = overlap / max(1, len(query_tokens))
    out[:, FEATURE_INDEX["title_coverage"]] = overlap / np.maximum(title_lengths, 1.0)
    covered = table.any_field_tokens.count_in(rows, query_ids)
    out[:, FEATURE_INDEX["query_coverage_all_fields"]] = covered / max(1, len(query_tokens))
    out[:, FEATURE_INDEX["query_tokens_missing"]] = len(query_tokens) - covered
    query_grams = char_trigrams(query)
    if query_grams:
        shared = table.title_trigrams.count_in(rows, table.token_ids(query_grams, table.trigram_vocabulary))
        out[:, FEATURE_INDEX["title_trigram_overlap"]] = shared / len(query_grams)
        out[:, FEATURE_INDEX["title_trigram_jaccard"]] = shared / (
            len(query_grams) + table.title_trigrams.lengths(rows) - shared)
    phrase = " ".join(query.lower().split())
    if phrase:
        out[:, FEATURE_INDEX["exact_phrase_in_title"]] = np.strings.find(table.title_lower[rows], phrase) >= 0

    query_units = unit_tokens(query)
    if query_units:
        out[:, FEATURE_INDEX["query_has_units"]] = 1.0
        unit_ids = table.token_ids(query_units, table.unit_vocabulary)
        matched = table.units.count_in(rows, unit_ids)
        out[:, FEATURE_INDEX["query_units_matched"]] = matched / len(query_units)
        kind_ids = table.token_ids({unit_kind(t) for t in query_units}, table.unit_vocabulary)
        same_kind = table.unit_kinds.count_in(rows, kind_ids)
        # the product states a size of the kind asked for, but never the value asked for
        out[:, FEATURE_INDEX["units_conflict"]] = ((same_kind > 0) & (matched == 0)).astype(np.float32)

    brands = table.brand_lower[rows]
    out[:, FEATURE_INDEX["brand_in_query"]] = (np.strings.str_len(brands) > 0) & (np.strings.find(phrase, brands) >= 0)
    out[:, FEATURE_INDEX["category_query_overlap"]] = (
        table.category_tokens.count_in(rows, query_ids) / max(1, len(query_tokens)))
    for phrase in table.understanding(query):  # how many of the values the query names it has
        named = table.token_ids((v.key for v in phrase.values), table.value_vocabulary)
        out[:, FEATURE_INDEX["query_values_matched"]] += table.values.count_in(rows, named) > 0

    out[:, FEATURE_INDEX["log_price"]] = table.log_price[rows]
    out[:, FEATURE_INDEX["rating"]] = table.rating[rows]
    out[:, FEATURE_INDEX["has_rating"]] = table.has_rating[rows]
    out[:, FEATURE_INDEX["log_review_count"]] = table.log_reviews[rows]
    out[:, FEATURE_INDEX["log_popularity"]] = table.log_popularity[rows]
    out[:, FEATURE_INDEX["in_stock"]] = table.in_stock[rows]
    out[:, FEATURE_INDEX["query_length"]] = len(query_tokens)
    out[:, FEATURE_INDEX["title_length"]] = title_lengths

    if view is not None:
        out[:, PERSONAL_START:] = table.personal.features(view, rows, vectors)
    return out


@dataclass
class FeatureInputs:
    """What `compute_features` needs besides the query, for one candidate list."""

    table: ProductTable
    rows: np.ndarray  # the candidates' rows in `table`, in candidate order
    text_scores: dict[str, np.ndarray]  # BM25 per search field and "combined", in candidate order
    vectors: np.ndarray  # the candidates' unit vectors, in candidate order
