"""The neural scorer at serving time: the exported ONNX graph run by onnxruntime (CUDA
where a GPU is present, CPU otherwise; `indexer.onnx_session` decides). No torch here.

Its inputs are the query embedding, the candidates' product embeddings, the shopper's
profile embedding (zeros when unknown: neutral) and the candidates' raw feature rows;
`ranker/training/neural.py` trains and exports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.onnx_session import open_session

INPUT_NAMES = ("query", "products", "profile", "features")
OUTPUT_NAME = "score"


class NeuralScorerSession:
    def __init__(self, path: Path, threads: int = 1):
        self.session = open_session(path, threads=threads)
        self.providers = self.session.get_providers()

    def score(self, query_vector: np.ndarray, product_vectors: np.ndarray, features: np.ndarray,
              profile: np.ndarray | None = None) -> np.ndarray:
        query = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
        profile = np.zeros_like(query) if profile is None else np.asarray(profile, np.float32).reshape(1, -1)
        (scores,) = self.session.run([OUTPUT_NAME], {
            "query": query, "products": np.ascontiguousarray(product_vectors, dtype=np.float32),
            "profile": profile, "features": np.ascontiguousarray(features, dtype=np.float32)})
        return scores
