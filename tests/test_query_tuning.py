"""The tuned query encoder: it learns from judgments, and serving runs the same network."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from indexer.encoder import TextEncoder
from ranker.training.query_encoder import QueryTower, _loss, export_query_encoder, judged_queries, tune_query_encoder


def _judged(demo_reader) -> list:  # type: ignore[no-untyped-def]
    """Queries a shopper might type (a title without its brand), the product rated 3, two
    of the same category 2, two random others 1."""
    products = demo_reader.catalog().products
    rng = random.Random(5)
    judgments, texts = {}, {}
    for product in rng.sample(products, 96):
        query = " ".join(product["title"].split()[1:]).lower()
        same = [p for p in products if p["category"] == product["category"] and p["id"] != product["id"]]
        judged = {product["id"]: 3.0, **{p["id"]: 2.0 for p in rng.sample(same, 2)},
                  **{p["id"]: 1.0 for p in rng.sample(products, 2) if p["category"] != product["category"]}}
        judgments[query], texts[query] = judged, query
    return judged_queries(judgments, texts, {p["id"]: i for i, p in enumerate(products)})


def test_tuning_lowers_the_loss_it_trains_on(demo_reader) -> None:  # type: ignore[no-untyped-def]
    queries = _judged(demo_reader)
    vectors = np.array(demo_reader.vectors, dtype=np.float32)
    shipped = QueryTower()  # the pre-trained weights, untouched
    tuned = tune_query_encoder(queries, vectors, epochs=4, progress=False)
    products = torch.from_numpy(vectors)
    with torch.no_grad():
        before = float(_loss(torch.from_numpy(shipped.encode([q.text for q in queries])), products, queries))
        after = float(_loss(torch.from_numpy(tuned.encode([q.text for q in queries])), products, queries))
    assert after < 0.97 * before, (before, after)  # a wrong sign or a frozen network would not get there


def test_exported_int8_graph_serves_what_torch_computes(demo_reader, models_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    queries = _judged(demo_reader)[:32]
    model = tune_query_encoder(queries, np.array(demo_reader.vectors, dtype=np.float32), epochs=1, progress=False)
    meta = export_query_encoder(model, tmp_path, "t1")
    assert meta == {"query_encoder": "query-encoder-t1.onnx", "query_tokenizer": "query-encoder-t1.tokenizer.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(meta.values())  # the fp32 intermediate is gone
    served = TextEncoder(models_dir, files=(tmp_path / meta["query_encoder"], tmp_path / meta["query_tokenizer"]))
    texts = ["cordless drill 18v", "white ceiling fan with light", queries[0].text]
    torch_vectors = model.encode(texts)
    onnx_vectors = np.stack([served.encode_query(t) for t in texts])
    assert (np.sum(torch_vectors * onnx_vectors, axis=1) > 0.98).all()  # int8 vs fp32
    shipped = TextEncoder(models_dir, "int8")
    assert float(shipped.encode_query(texts[0]) @ onnx_vectors[0]) < 0.9999  # it is not the shipped model
