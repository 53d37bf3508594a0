"""Ranking features: the one definition of the feature vector of a (query, product,
shopper) triple, computed for all candidates of a query at once with numpy. Training and
serving both call `ranker.features.sources.features_for`, so they cannot disagree.

names.py (the vector's layout) · units.py (sizes in text) · token_bags.py (per-product
token sets) · field_bm25.py (BM25 from token bags) · product_table.py (per-product data,
once per generation) · compute.py (the features) · sources.py (where each backend's
inputs come from).
"""
