"""Would a fine-tuned MiniLM order judged products better? A probe, not a pipeline stage.

    python bench/finetune_probe.py --judgments FILE --catalog FILE [--fold 0] [--epochs 1] [--model bi|cross]

Re-ranking judged products is the one target no feature or objective moved past the
MiniLM cosine (docs/ranking.md), so this measures the obvious next step before building it:
fine-tune all-MiniLM-L6-v2 on the judgments of the other folds' queries and compare the
cosine's nDCG@5 on this fold's judged products before and after. Loss: RankNet over each
query's judged products (pairs weighted by their relevance gap) plus an in-batch
contrastive term (each query's best product against every product in the batch), which
keeps the space usable for retrieval. Product text is what the index embeds
(`embedding_text`); the network is `ranker.training.query_encoder.QueryTower`, here
trained as both towers, by the same loop `train` tunes the query encoder with
(`fine_tune`). Uses torch (offline only) and CUDA when present; on 2 CPU cores one epoch
over four folds took about 13 minutes (a draft of this script).

`--model cross` trains the same network as a cross-encoder instead: query and title read
as one sequence, mean-pooled, one linear score, RankNet over each query's judged products.
It is the strongest text model MiniLM gives, and the most expensive to serve (one network
pass per candidate, not per query), so the probe also prints what scoring 100 candidates
costs with it on this machine.

`--model query --data-dir DIR` tunes only the query side against the index's own product
vectors, exactly as `python -m ranker train` does (`ranker.training.query_encoder`, queries
corrected by the search pipeline), so its epochs and learning rate can be tried on one fold; it prints
the cosine's re-ranking nDCG@5 and its catalog-wide recall@100 before and after.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.catalog import read_catalog  # noqa: E402
from indexer.encoder import embedding_text  # noqa: E402
from ranker.evaluate import read_judgments  # noqa: E402
from ranker.metrics import ndcg_at, recall_at  # noqa: E402
from ranker.training.folds import fold_of  # noqa: E402
from ranker.training.query_encoder import (  # noqa: E402
    EPOCHS,
    LEARNING_RATE,
    SCALE,
    QueryTower,
    fine_tune,
    judged_queries,
    ranknet,
    tune_query_encoder,
)


def ndcg5_by(scores: np.ndarray, judged: list[str], relevance: dict[str, float]) -> float:
    """nDCG@5 of `judged` ordered by `scores`, best first (ties keep the judgments' order)."""
    return ndcg_at([judged[i] for i in np.argsort(-scores, kind="stable")], relevance, 5)


def rerank_ndcg5(encoder: QueryTower, queries: list[str], judgments: dict, texts: dict[str, str]) -> float:
    ids = sorted({p for q in queries for p in judgments[q]})
    product_vectors = dict(zip(ids, encoder.encode([texts[p] for p in ids]), strict=True))
    query_vectors = dict(zip(queries, encoder.encode(queries), strict=True))
    scores = []
    for q in queries:
        judged = list(judgments[q])
        cosine = np.array([product_vectors[p] @ query_vectors[q] for p in judged])
        scores.append(ndcg5_by(cosine, judged, judgments[q]))
    return float(np.mean(scores))


def step_loss(encoder: QueryTower, queries: list[str], judgments: dict, texts: dict[str, str]) -> torch.Tensor:
    lists = [list(judgments[q]) for q in queries]
    products = encoder([texts[p] for judged in lists for p in judged])
    query_vectors = encoder(queries)
    pairwise, pair_weight, best, start = 0.0, 0.0, [], 0
    for k, (q, judged) in enumerate(zip(queries, lists, strict=True)):
        scores = SCALE * (products[start : start + len(judged)] @ query_vectors[k])
        relevance = torch.tensor([judgments[q][p] for p in judged], device=scores.device)
        loss, weight = ranknet(scores, relevance)
        pairwise, pair_weight = pairwise + loss, pair_weight + weight
        best.append(start + int(relevance.argmax()))
        start += len(judged)
    contrastive = torch.nn.functional.cross_entropy(SCALE * query_vectors @ products.T,
                                                    torch.tensor(best, device=products.device))
    return pairwise / max(float(pair_weight), 1.0) + 0.3 * contrastive


class CrossScorer(torch.nn.Module):
    """MiniLM reading (query, product text) as one sequence; a linear score of the mean-pooled states."""

    def __init__(self, frozen_layers: int, max_tokens: int = 64) -> None:
        super().__init__()
        self.encoder = QueryTower(frozen_layers=frozen_layers, max_tokens=max_tokens)
        self.head = torch.nn.Linear(self.encoder.transformer.config.hidden_size, 1)

    def forward(self, pairs: list[tuple[str, str]]) -> torch.Tensor:
        return self.head(self.encoder.pooled(pairs)).squeeze(-1)

    def score(self, pairs: list[tuple[str, str]], batch_size: int = 256) -> np.ndarray:
        self.eval()
        with torch.no_grad():
            return np.concatenate([self(pairs[s : s + batch_size]).cpu().numpy()
                                   for s in range(0, len(pairs), batch_size)])


def cross_step_loss(scorer: CrossScorer, queries: list[str], judgments: dict, texts: dict[str, str]) -> torch.Tensor:
    lists = [list(judgments[q]) for q in queries]
    scores = scorer([(q, texts[p]) for q, judged in zip(queries, lists, strict=True) for p in judged])
    pairwise, pair_weight, start = 0.0, 0.0, 0
    for q, judged in zip(queries, lists, strict=True):
        relevance = torch.tensor([judgments[q][p] for p in judged], device=scores.device)
        loss, weight = ranknet(scores[start : start + len(judged)], relevance)
        pairwise, pair_weight = pairwise + loss, pair_weight + weight
        start += len(judged)
    return pairwise / max(float(pair_weight), 1.0)


def cross_rerank_ndcg5(scorer: CrossScorer, queries: list[str], judgments: dict, texts: dict[str, str]) -> float:
    lists = [list(judgments[q]) for q in queries]
    scores = scorer.score([(q, texts[p]) for q, judged in zip(queries, lists, strict=True) for p in judged])
    out, start = [], 0
    for q, judged in zip(queries, lists, strict=True):
        out.append(ndcg5_by(scores[start : start + len(judged)], judged, judgments[q]))
        start += len(judged)
    return float(np.mean(out))


def cross_cost_ms(scorer: CrossScorer, query: str, titles: list[str], repeats: int = 5) -> float:
    """Median time to score 100 candidates of one query (torch, this process's threads)."""
    pairs = [(query, t) for t in (titles * 100)[:100]]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        scorer.score(pairs, batch_size=100)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def vector_quality(query_vectors: np.ndarray, queries: list[str], product_vectors: np.ndarray, ids: list[str],
                   ord_by_id: dict[str, int], judgments: dict) -> tuple[float, float]:
    """(re-ranking nDCG@5 of the judged products, recall@100 over the whole catalog) by cosine."""
    ndcg5, recalls = [], []
    for q, vector in zip(queries, query_vectors, strict=True):
        judged = [p for p in judgments[q] if p in ord_by_id]
        cosine = product_vectors[[ord_by_id[p] for p in judged]] @ vector
        ndcg5.append(ndcg5_by(cosine, judged, judgments[q]))
        top = np.argpartition(-(product_vectors @ vector), 100)[:100]
        recall = recall_at([ids[i] for i in top], judgments[q], 100)
        if recall is not None:
            recalls.append(recall)
    return float(np.mean(ndcg5)), float(np.mean(recalls))


def query_side_probe(data_dir: Path, judgments_path: Path, epochs: int, lr: float, judgments: dict, train: list[str],
                     test: list[str]) -> None:
    from indexer.backends import open_backend
    from ranker.training.fit import TrainingSet

    data, _queries = TrainingSet.open(open_backend(data_dir), judgments_path)
    ids = [p["id"] for p in data.catalog.products]
    ord_by_id = data.ord_by_id
    vectors = np.asarray(data.catalog.vectors, dtype=np.float32)
    texts = {q: data.searched_text(q) for q in train + test}
    shipped = QueryTower().encode([texts[q] for q in test])
    ndcg5, recall = vector_quality(shipped, test, vectors, ids, ord_by_id, judgments)
    print(f"cosine as shipped: re-ranking nDCG@5 {ndcg5:.4f}, recall@100 {recall:.4f}", flush=True)
    started = time.perf_counter()
    tuned = tune_query_encoder(judged_queries({q: judgments[q] for q in train}, texts, ord_by_id),
                               vectors, epochs=epochs, lr=lr)
    seconds = time.perf_counter() - started
    ndcg5, recall = vector_quality(tuned.encode([texts[q] for q in test]), test, vectors, ids, ord_by_id, judgments)
    print(f"query side tuned ({epochs} epochs, lr {lr:g}, {seconds:.0f}s): "
          f"re-ranking nDCG@5 {ndcg5:.4f}, recall@100 {recall:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", required=True, type=Path)
    parser.add_argument("--catalog", required=True, type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=0, help="the held-out fold (same hash as `ranker train`)")
    parser.add_argument("--epochs", type=float, help="default: 1 (bi, cross); what `ranker train` uses (query)")
    parser.add_argument("--lr", type=float, help="default: 3e-5 (bi, cross); what `ranker train` uses (query)")
    parser.add_argument("--freeze-layers", type=int, default=2, help="lowest transformer layers kept as they are")
    parser.add_argument("--model", choices=("bi", "cross", "query"), default="bi",
                        help="bi: both towers of the vector space; cross: a cross-encoder scorer; "
                             "query: the query side only, against --data-dir's vectors")
    parser.add_argument("--data-dir", type=Path, help="the index whose vectors `--model query` tunes against")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    texts = {p["id"]: embedding_text(p) for p in read_catalog(args.catalog).products}
    judgments = {q: {p: r for p, r in judged.items() if p in texts}
                 for q, judged in read_judgments(args.judgments).items()}
    judgments = {q: judged for q, judged in judgments.items() if judged}
    test = sorted(q for q in judgments if fold_of(q, args.folds) == args.fold)
    train = sorted(q for q in judgments if fold_of(q, args.folds) != args.fold)

    if args.model == "query":
        if args.data_dir is None:
            parser.error("--model query needs --data-dir")
        query_side_probe(args.data_dir, args.judgments, int(args.epochs or EPOCHS), args.lr or LEARNING_RATE,
                         judgments, train, test)
        return 0
    args.epochs, args.lr = args.epochs or 1.0, args.lr or 3e-5

    # the shipped cosine is the reference either way; in `bi` both towers are this one network
    encoder = QueryTower(frozen_layers=args.freeze_layers, max_tokens=64).to(device)
    before = rerank_ndcg5(encoder, test, judgments, texts)
    print(f"fold {args.fold}: {len(train):,} training queries, {len(test):,} held out; device {device}")
    print(f"re-ranking nDCG@5, MiniLM cosine as shipped: {before:.4f}", flush=True)
    if args.model == "cross":
        model: torch.nn.Module = CrossScorer(args.freeze_layers).to(device)
        loss_of, quality = cross_step_loss, cross_rerank_ndcg5
    else:
        model, loss_of, quality = encoder, step_loss, rerank_ndcg5

    started = time.perf_counter()
    fine_tune(model, train, lambda batch: loss_of(model, batch, judgments, texts), epochs=args.epochs, lr=args.lr,
              warmup=50, desc=f"fine-tuning {args.model}")
    seconds = time.perf_counter() - started
    after = quality(model, test, judgments, texts)
    print(f"re-ranking nDCG@5, fine-tuned {args.model} ({args.epochs:g} epochs, {seconds:.0f}s): {after:.4f} "
          f"({after - before:+.4f})")
    if args.model == "cross":
        titles = [texts[p] for p in judgments[test[0]]]
        print(f"cross-encoder cost, 100 candidates of one query (torch fp32, {torch.get_num_threads()} threads, "
              f"{device}): {cross_cost_ms(model, test[0], titles):.1f} ms median")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
