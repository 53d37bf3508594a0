"""The layout of the feature vector: names in column order. Personalization features
are part of the vector from the start and are 0 (neutral) when the shopper is unknown or
has no profile."""

from __future__ import annotations

# How a candidate fits the shopper's profile (ranker/features/personal.py); always last.
PERSONAL_FEATURES: tuple[str, ...] = (
    "personal_evidence", "personal_category_affinity", "personal_brand_affinity", "personal_brand_in_category",
    "personal_brand_in_department", "personal_attribute_affinity",
    "personal_embedding_cosine", "personal_price_fit", "personal_engaged",
)
SEARCH_FIELD_FEATURES = ("title", "brand.text", "category.text", "attributes_text", "description")
FEATURE_NAMES: tuple[str, ...] = (
    "bm25_combined",
    *(f"bm25_{f}" for f in SEARCH_FIELD_FEATURES),
    "vector_cosine",
    "log_recall_rank", "log_bm25_rank", "log_vector_rank",
    "title_query_overlap", "title_coverage", "exact_phrase_in_title",
    "query_coverage_all_fields", "query_tokens_missing", "title_trigram_overlap", "title_trigram_jaccard",
    "query_has_units", "query_units_matched", "units_conflict",
    "brand_in_query", "category_query_overlap", "query_values_matched",
    "log_price", "rating", "has_rating", "log_review_count", "log_popularity", "in_stock",
    "query_length", "title_length",
    *PERSONAL_FEATURES,
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
PERSONAL_START = FEATURE_INDEX[PERSONAL_FEATURES[0]]
