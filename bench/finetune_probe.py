"""Would a fine-tuned MiniLM order judged products better? A probe, not a pipeline stage.

    python bench/finetune_probe.py --judgments FILE --catalog FILE [--fold 0] [--epochs 1]

Re-ranking judged products is the one target no feature or objective moved past the
MiniLM cosine (docs/ranking.md), so this measures the obvious next step before building it:
fine-tune all-MiniLM-L6-v2 on the judgments of the other folds' queries and compare the
cosine's nDCG@5 on this fold's judged products before and after. Loss: RankNet over each
query's judged products (pairs weighted by their relevance gap) plus an in-batch
contrastive term (each query's best product against every product in the batch), which
keeps the space usable for retrieval. Product text is what the index embeds
(`embedding_text`); the network is `ranker.query_tuning.QueryEncoder`, here trained as
both towers. Uses torch (offline only) and CUDA when present; on 2 CPU cores one epoch
over four folds took about 13 minutes (a draft of this script).
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
from ranker.metrics import ndcg_at  # noqa: E402
from ranker.query_tuning import QUERIES_PER_STEP, SCALE, QueryEncoder  # noqa: E402
from ranker.training import fold_of  # noqa: E402


def rerank_ndcg5(encoder: QueryEncoder, queries: list[str], judgments: dict, texts: dict[str, str]) -> float:
    ids = sorted({p for q in queries for p in judgments[q]})
    product_vectors = dict(zip(ids, encoder.encode([texts[p] for p in ids]), strict=True))
    query_vectors = dict(zip(queries, encoder.encode(queries), strict=True))
    scores = []
    for q in queries:
        judged = list(judgments[q])
        cosine = np.array([product_vectors[p] @ query_vectors[q] for p in judged])
        scores.append(ndcg_at([judged[i] for i in np.argsort(-cosine, kind="stable")], judgments[q], 5))
    return float(np.mean(scores))


def step_loss(encoder: QueryEncoder, queries: list[str], judgments: dict, texts: dict[str, str]) -> torch.Tensor:
    lists = [list(judgments[q]) for q in queries]
    products = encoder([texts[p] for judged in lists for p in judged])
    query_vectors = encoder(queries)
    pairwise, pair_weight, best, start = 0.0, 0.0, [], 0
    for k, (q, judged) in enumerate(zip(queries, lists, strict=True)):
        scores = SCALE * (products[start : start + len(judged)] @ query_vectors[k])
        relevance = torch.tensor([judgments[q][p] for p in judged], device=scores.device)
        weight = (relevance[:, None] - relevance[None, :]).clamp(min=0)
        pairwise = pairwise + (torch.nn.functional.softplus(-(scores[:, None] - scores[None, :])) * weight).sum()
        pair_weight = pair_weight + weight.sum()
        best.append(start + int(relevance.argmax()))
        start += len(judged)
    contrastive = torch.nn.functional.cross_entropy(SCALE * query_vectors @ products.T,
                                                    torch.tensor(best, device=products.device))
    return pairwise / max(float(pair_weight), 1.0) + 0.3 * contrastive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", required=True, type=Path)
    parser.add_argument("--catalog", required=True, type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=0, help="the held-out fold (same hash as `ranker train`)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--freeze-layers", type=int, default=2, help="lowest transformer layers kept as they are")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    texts = {p["id"]: embedding_text(p) for p in read_catalog(args.catalog).products}
    judgments = {q: {p: r for p, r in judged.items() if p in texts}
                 for q, judged in read_judgments(args.judgments).items()}
    judgments = {q: judged for q, judged in judgments.items() if judged}
    test = sorted(q for q in judgments if fold_of(q, args.folds) == args.fold)
    train = sorted(q for q in judgments if fold_of(q, args.folds) != args.fold)

    # both towers are this one network: products and queries share its weights
    encoder = QueryEncoder(frozen_layers=args.freeze_layers, max_tokens=64).to(device)
    before = rerank_ndcg5(encoder, test, judgments, texts)
    print(f"fold {args.fold}: {len(train):,} training queries, {len(test):,} held out; device {device}")
    print(f"re-ranking nDCG@5, MiniLM cosine as shipped: {before:.4f}", flush=True)

    steps = int(args.epochs * len(train) / QUERIES_PER_STEP)
    optimizer = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / steps))
    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(len(train)) for _ in range(int(np.ceil(args.epochs)))])
    started = time.perf_counter()
    encoder.train()
    from tqdm import tqdm

    for step in tqdm(range(steps), desc="fine-tuning", unit="step", disable=None):
        batch = [train[i] for i in order[step * QUERIES_PER_STEP : (step + 1) * QUERIES_PER_STEP]]
        loss = step_loss(encoder, batch, judgments, texts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - started
    after = rerank_ndcg5(encoder, test, judgments, texts)
    print(f"re-ranking nDCG@5, fine-tuned ({steps} steps, {seconds:.0f}s): {after:.4f} ({after - before:+.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
