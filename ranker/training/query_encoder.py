"""The query side of MiniLM, fine-tuned on the judgments (PyTorch; offline only).

Product vectors stay exactly as the index stored them; only the query encoder learns
where, in that fixed space, a query should land. So a tuned model needs no re-embedding
of the catalog and no second vector per product, the index and its contract do not
change, and serving still encodes each query once (same network, same cost). What it
gains is in docs/ranking.md.

Loss per query: a softmax over the whole catalog's vectors with the judged products as
targets, weighted by their gain (recall: pull relevant products above every other
product), plus RankNet over the judged products (order among them). The token embeddings
stay frozen, so words the judgments never use keep their pre-trained meaning.
Serving runs the int8 ONNX export (`export_query_encoder`) through onnxruntime.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from indexer.model_export import export_pooled, load_transformer
from ranker.metrics import gain
from ranker.training.folds import fold_of

QUERY_TOKENS = 32  # queries are a few words; longer ones are cut in training only (serving takes 128)
SCALE = 20.0  # cosine -> logit (the usual temperature for MiniLM contrastive training)
QUERIES_PER_STEP = 32


@dataclass(frozen=True)
class JudgedQuery:
    """A query as searched (corrected) and its judged products' rows in the vector table."""

    query: str  # as typed: the key of the judgments and of the folds
    text: str
    ordinals: np.ndarray  # int64
    relevance: np.ndarray  # float32, 1-3


class QueryTower(torch.nn.Module):
    """MiniLM + mean pooling + L2 normalisation, the graph the ONNX export serves."""

    def __init__(self, frozen_layers: int = 0, max_tokens: int = QUERY_TOKENS) -> None:
        """Token embeddings and the lowest `frozen_layers` transformer layers stay as
        shipped; texts are cut at `max_tokens` (`bench/finetune_probe.py` encodes titles
        with this class too, so it takes more than queries need)."""
        super().__init__()
        from tokenizers import Tokenizer

        from indexer.model_files import tokenizer_source

        self.transformer = load_transformer()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_source()))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        frozen = ("embeddings.", *(f"encoder.layer.{i}." for i in range(frozen_layers)))
        for name, parameter in self.transformer.named_parameters():
            parameter.requires_grad = not name.startswith(frozen)

    def forward(self, texts: list[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(self.pooled(texts), dim=-1)

    def pooled(self, texts: list[str] | list[tuple[str, str]]) -> torch.Tensor:
        """Mean of the token states; a (query, title) pair is read as one sequence with
        the second text's segment id (how `bench/finetune_probe.py` uses it as a cross-encoder)."""
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = torch.zeros((len(texts), width), dtype=torch.long)
        segments = torch.zeros((len(texts), width), dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)], segments[i, : len(e.ids)], mask[i, : len(e.ids)] = (
                torch.tensor(e.ids), torch.tensor(e.type_ids), 1)
        device = next(self.transformer.parameters()).device
        ids, segments, mask = ids.to(device), segments.to(device), mask.to(device)
        hidden = self.transformer(input_ids=ids, attention_mask=mask, token_type_ids=segments).last_hidden_state
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)

    def encode(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        self.eval()
        with torch.no_grad():
            return np.vstack([self(texts[s : s + batch_size]).cpu().numpy() for s in range(0, len(texts), batch_size)])


def ranknet(scores: torch.Tensor, relevance: torch.Tensor) -> tuple[torch.Tensor, float]:
    """One query's RankNet loss, summed over its pairs, each weighted by the relevance gap
    (a 3 above a 1 counts twice a 3 above a 2), and the summed weight to normalise by."""
    weight = (relevance[:, None] - relevance[None, :]).clamp(min=0)
    return (torch.nn.functional.softplus(scores[None, :] - scores[:, None]) * weight).sum(), float(weight.sum())


def _loss(vectors: torch.Tensor, products: torch.Tensor, batch: list[JudgedQuery]) -> torch.Tensor:
    logits = SCALE * vectors @ products.T  # (queries, catalog)
    log_probs = torch.log_softmax(logits, dim=1)
    recall_loss, pair_loss, pair_weight = vectors.new_zeros(()), vectors.new_zeros(()), 0.0
    for k, q in enumerate(batch):
        ordinals = torch.from_numpy(q.ordinals)
        gains = torch.tensor([gain(float(r)) for r in q.relevance])
        if gains.sum() > 0:
            recall_loss = recall_loss - (log_probs[k, ordinals] * gains).sum() / gains.sum()
        loss, weight = ranknet(logits[k, ordinals], torch.from_numpy(q.relevance))
        pair_loss, pair_weight = pair_loss + loss, pair_weight + weight
    return recall_loss / len(batch) + pair_loss / max(pair_weight, 1.0)


EPOCHS = 4
LEARNING_RATE = 1e-4
WARMUP_STEPS = 30

Item = TypeVar("Item")


def fine_tune(model: torch.nn.Module, items: Sequence[Item], loss_of: Callable[[list[Item]], torch.Tensor], *,
              epochs: float, lr: float, warmup: int = WARMUP_STEPS, batch_size: int = QUERIES_PER_STEP,
              seed: int = 0, progress: bool = True, desc: str = "fine-tuning") -> None:
    """The one fine-tuning loop: AdamW over `model`'s trainable parameters, `warmup` steps
    of linear warm-up then a linear decay to zero, batches of `batch_size` items drawn
    without replacement and reshuffled every epoch. The bar shows the time left."""
    steps = max(1, int(epochs * len(items) / batch_size))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps))
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(items)) for _ in range(math.ceil(epochs) + 1)])
    model.train()
    for step in tqdm(range(steps), desc=desc, unit="step", disable=None if progress else True, leave=False):
        loss = loss_of([items[i] for i in order[step * batch_size : (step + 1) * batch_size]])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()


def mixed_precision() -> bool:
    """bf16 for the transformer's forward and backward passes where the processor runs bf16
    natively (AVX512-BF16 / AMX): about twice as fast (docs/ranking.md), the weights and the
    loss stay float32. $SHOPRANK_TRAINING_PRECISION=fp32 turns it off."""
    from indexer import settings

    wanted = settings.training_precision()
    if wanted != "auto":
        return wanted == "bf16"
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def tune_query_encoder(queries: list[JudgedQuery], product_vectors: np.ndarray, epochs: int = EPOCHS,
                       lr: float = LEARNING_RATE, seed: int = 0, progress: bool = True) -> QueryTower:
    """The query tower tuned against the fixed product vectors. `bench/finetune_probe.py
    --model query` tries other epochs and learning rates on one fold."""
    torch.manual_seed(seed)
    products = torch.from_numpy(np.array(product_vectors, dtype=np.float32))  # a writable copy
    model = QueryTower()
    bf16 = mixed_precision()

    def loss(batch: list[JudgedQuery]) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            vectors = model([q.text for q in batch])
        return _loss(vectors.float(), products, batch)

    fine_tune(model, queries, loss, epochs=epochs, lr=lr, seed=seed, progress=progress, desc="query encoder")
    return model


def out_of_fold_vectors(queries: list[JudgedQuery], product_vectors: np.ndarray, folds: int,
                        progress: bool = True) -> dict[str, np.ndarray]:
    """Each query's vector from an encoder tuned without it, so recall, features and the
    models downstream see what serving would see for a query the encoder never met. The
    folds are salted: this runs inside the folds of an evaluation too."""
    out: dict[str, np.ndarray] = {}
    for fold in tqdm(range(folds), desc="query encoder, out of fold", unit="fold",
                     disable=None if progress else True, leave=False):
        held_out = [q for q in queries if fold_of(q.query, folds, "vectors:") == fold]
        rest = [q for q in queries if fold_of(q.query, folds, "vectors:") != fold]
        if not held_out or not rest:
            continue
        model = tune_query_encoder(rest, product_vectors, progress=progress)
        out.update(zip([q.query for q in held_out], model.encode([q.text for q in held_out]), strict=True))
    return out


def judged_queries(judgments: dict[str, dict[str, float]], texts: dict[str, str],
                   ord_by_id: dict[str, int]) -> list[JudgedQuery]:
    out = []
    for query, judged in judgments.items():
        ids = [i for i in judged if i in ord_by_id]
        if ids:
            out.append(JudgedQuery(query, texts[query], np.array([ord_by_id[i] for i in ids], dtype=np.int64),
                                   np.array([judged[i] for i in ids], dtype=np.float32)))
    return out


def export_query_encoder(model: QueryTower, out_dir: Path, version: str) -> dict[str, Any]:
    """int8 ONNX graph and its tokenizer next to the other models of `version`; returns
    the meta entries that name them. The fp32 intermediate is removed."""
    from indexer.model_files import tokenizer_source

    graph = out_dir / f"query-encoder-{version}.onnx"
    fp32 = out_dir / f".query-encoder-{version}.fp32.onnx"
    export_pooled(model.transformer, fp32, graph)
    fp32.unlink()
    tokenizer = out_dir / f"query-encoder-{version}.tokenizer.json"
    shutil.copyfile(tokenizer_source(), tokenizer)
    return {"query_encoder": graph.name, "query_tokenizer": tokenizer.name}
