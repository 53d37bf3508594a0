"""Training and ONNX export of the neural scorer (PyTorch; offline only).

The scorer sees what the tree model cannot: the full query and product embeddings. Both go
through one learned projection and meet as an element-wise product (a re-weighted cosine
the judgments can bend, e.g. towards sizes and materials); the shopper's profile embedding
meets the product the same way (trained only from the event log, `train --events`, where
searches have shoppers: judgments have none, so there it is zeros and learns nothing); the dense feature vector joins them, standardized inside
the graph so serving passes raw features. A small MLP turns that into a score.

It is trained pairwise (RankNet over every pair of a query's candidates with different
labels) on padded per-query tensors, with early stopping on validation queries' nDCG@10.
Serving never imports this module: it runs the exported graph with onnxruntime.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ranker.metrics import ndcg_of_scores
from ranker.neural import INPUT_NAMES, OUTPUT_NAME

HIDDEN = 96


class NeuralScorer(torch.nn.Module):
    def __init__(self, dim: int, feature_mean: np.ndarray, feature_std: np.ndarray, hidden: int = HIDDEN):
        super().__init__()
        self.register_buffer("feature_mean", torch.as_tensor(feature_mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.as_tensor(feature_std, dtype=torch.float32))
        self.project = torch.nn.Linear(dim, hidden, bias=False)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(2 * hidden + len(feature_mean), hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, 48), torch.nn.ReLU(),
            torch.nn.Linear(48, 1),
        )

    def forward(self, query: torch.Tensor, products: torch.Tensor, profile: torch.Tensor,
                features: torch.Tensor) -> torch.Tensor:
        """Shapes broadcast: serving passes query/profile (1, dim), products (n, dim),
        features (n, F); training passes (batch, 1, dim) and (batch, n, ...)."""
        p = self.project(products)
        q = self.project(query) * p
        u = self.project(profile) * p
        z = (features - self.feature_mean) / self.feature_std
        return self.mlp(torch.cat([q, u, z], dim=-1)).squeeze(-1)


@dataclass
class QueryBatch:
    """Per-query candidate lists padded to one length; `mask` marks real candidates."""

    queries: list[str]
    query_vectors: np.ndarray  # (Q, dim)
    ordinals: np.ndarray  # (Q, N) int64, product rows in the vector table
    features: np.ndarray  # (Q, N, F)
    labels: np.ndarray  # (Q, N)
    mask: np.ndarray  # (Q, N) bool
    profiles: np.ndarray | None = None  # (Q, dim): each search's shopper's profile embedding (None: zeros)

    def profile_tensor(self, rows: np.ndarray, query: torch.Tensor) -> torch.Tensor:
        """The profiles of `rows`, shaped as `query` is (zeros without profiles: neutral)."""
        if self.profiles is None:
            return torch.zeros_like(query)
        return torch.from_numpy(self.profiles[rows]).unsqueeze(1)

    @classmethod
    def from_rows(cls, rows: list, profiles: np.ndarray | None = None) -> QueryBatch:  # type: ignore[type-arg]
        width = max(len(r.ids) for r in rows)
        count, n_features = len(rows), rows[0].features.shape[1]
        ordinals = np.zeros((count, width), dtype=np.int64)
        features = np.zeros((count, width, n_features), dtype=np.float32)
        labels = np.zeros((count, width), dtype=np.float32)
        mask = np.zeros((count, width), dtype=bool)
        for i, r in enumerate(rows):
            n = len(r.ids)
            ordinals[i, :n], features[i, :n], labels[i, :n], mask[i, :n] = r.ordinals, r.features, r.labels, True
        return cls([r.query for r in rows], np.stack([r.query_vector for r in rows]), ordinals, features, labels,
                   mask, None if profiles is None else np.asarray(profiles, dtype=np.float32))


def _pairwise_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RankNet: log(1 + exp(-(s_i - s_j))) for every pair with label_i > label_j, weighted
    by the label gap, averaged over pairs."""
    better = (labels.unsqueeze(2) > labels.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    weight = (labels.unsqueeze(2) - labels.unsqueeze(1)).clamp(min=0) * better
    diff = scores.unsqueeze(2) - scores.unsqueeze(1)
    losses = torch.nn.functional.softplus(-diff) * weight
    return losses.sum() / weight.sum().clamp(min=1.0)


def _mean_ndcg10(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean([ndcg_of_scores(y[m], s[m]) for s, y, m in zip(scores, labels, mask, strict=True)]))


def predict_batch(model: NeuralScorer, batch: QueryBatch, product_vectors: torch.Tensor,
                  chunk: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(batch.queries), chunk):
            rows = np.arange(start, min(start + chunk, len(batch.queries)))
            query = torch.from_numpy(batch.query_vectors[rows]).unsqueeze(1)
            out.append(model(query, product_vectors[torch.from_numpy(batch.ordinals[rows])],
                             batch.profile_tensor(rows, query), torch.from_numpy(batch.features[rows])).numpy())
    return np.concatenate(out)


def train_neural(train: QueryBatch, valid: QueryBatch, product_vectors: np.ndarray, epochs: int = 12,
                 batch_size: int = 32, seed: int = 0, progress: bool = True) -> NeuralScorer:
    """Adam, RankNet loss; the returned model is the epoch with the best validation nDCG@10."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vectors = torch.from_numpy(np.array(product_vectors, dtype=np.float32))
    flat = train.features[train.mask]
    std = flat.std(axis=0)
    model = NeuralScorer(vectors.shape[1], flat.mean(axis=0), np.where(std > 1e-6, std, 1.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-5)
    best, best_state, patience = -1.0, None, 0
    for _epoch in tqdm(range(epochs), desc="neural scorer", unit="epoch", disable=None if progress else True):
        model.train()
        order = rng.permutation(len(train.queries))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            query = torch.from_numpy(train.query_vectors[idx]).unsqueeze(1)
            scores = model(query, vectors[torch.from_numpy(train.ordinals[idx])], train.profile_tensor(idx, query),
                           torch.from_numpy(train.features[idx]))
            loss = _pairwise_loss(scores, torch.from_numpy(train.labels[idx]), torch.from_numpy(train.mask[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        quality = _mean_ndcg10(predict_batch(model, valid, vectors), valid.labels, valid.mask)
        if quality > best:
            best, best_state, patience = quality, copy.deepcopy(model.state_dict()), 0
        else:
            patience += 1
            if patience >= 2:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    return model.eval()


def export_onnx(model: NeuralScorer, path: Path) -> None:
    """Write the graph atomically; candidates (n) is the dynamic axis."""
    dim, n_features = model.project.in_features, model.feature_mean.shape[0]
    example = (torch.zeros(1, dim), torch.zeros(3, dim), torch.zeros(1, dim), torch.zeros(3, n_features))
    tmp = path.with_name(f".{path.name}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), example, str(tmp), input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                          dynamic_axes={"products": {0: "n"}, "features": {0: "n"}, OUTPUT_NAME: {0: "n"}},
                          opset_version=17, dynamo=False)
    tmp.replace(path)
