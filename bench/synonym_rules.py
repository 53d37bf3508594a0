"""What merchandising synonym rules do to relevance on judged queries, in process.

    python bench/synonym_rules.py --data-dir DIR --judgments FILE [--limit 2000] [--json OUT]

Loads DIR the way a server worker does (ranker.serving: its model, if one is trained) and
measures the same queries three ways: no rules; a merchandiser's everyday synonym sets
(units written out, a few product nouns shoppers say differently) acting on BM25 only; and
the same sets given to the query encoder too. Prints nDCG@10, nDCG@5, MRR and recall@100
of each over the whole catalog (unjudged = not relevant), so a rule set can be shown not
to cost relevance. The sets are general shop vocabulary written before looking at any
results, not tuned on the judgments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import faiss

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from ranker.evaluate import evaluate_search, known_judgments, read_judgments  # noqa: E402
from ranker.request import SearchRequest  # noqa: E402
from ranker.rules.engine import RuleBook, rule_order  # noqa: E402
from ranker.rules.model import parse_rule  # noqa: E402
from ranker.serving import ServingState  # noqa: E402

SYNONYM_SETS = [
    ["in", "inch"], ["ft", "feet", "foot"], ["gal", "gallon"], ["lb", "pound"], ["oz", "ounce"],
    ["cu", "cubic"], ["sq", "square"], ["qt", "quart"], ["yd", "yard"], ["hp", "horsepower"],
    ["fridge", "refrigerator"], ["tv", "television"], ["couch", "sofa"], ["tap", "faucet"],
    ["bbq", "grill"], ["weed eater", "string trimmer"], ["a/c", "air conditioner"],
]


def synonym_book() -> RuleBook:
    rules = [parse_rule({"kind": "synonym", "scope": {"match": "any"}, "terms": terms, "one_way": False},
                        rule_id=f"syn-{n}") for n, terms in enumerate(SYNONYM_SETS)]
    return RuleBook(tuple(sorted(rules, key=rule_order)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--judgments", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=2000, help="the first N judged queries (0: all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    pipeline = ServingState(open_backend(settings.data_dir(args.data_dir))).pipeline()
    judgments, queries = known_judgments(read_judgments(args.judgments), pipeline.reader, args.limit)
    book = synonym_book()
    touched = sum(1 for q in queries if book.matching(q, None, time.time()) and
                  pipeline.rank(SearchRequest(q, k=1), rules=book).search.bm25_extra)
    print(f"{len(queries):,} queries, {pipeline.reader.document_count:,} products, model "
          f"{pipeline.ranker.version if pipeline.ranker else 'none'}; {len(book.rules)} synonym sets touch "
          f"{touched:,} of the queries")
    results = {}
    for name, rules, in_encoder in (("no rules", RuleBook(), False), ("synonyms, BM25 only", book, False),
                                    ("synonyms, BM25 and encoder", book, True)):
        pipeline.recall.synonyms_in_encoder = in_encoder

        def search(query: str, k: int, rules: RuleBook = rules) -> list[str]:
            ranked = pipeline.rank(replace(SearchRequest(query), k=k), rules=rules)
            return [c.id for c in ranked.candidates[:k]]

        started = time.perf_counter()
        scores, _runs = evaluate_search(search, judgments, queries, 100)
        results[name] = scores.as_dict()
        print(f"{name:<28} " + "  ".join(f"{k} {v}" for k, v in results[name].items())
              + f"  ({time.perf_counter() - started:.0f}s)")
    if args.json:
        args.json.write_text(json.dumps({"queries": len(queries), "touched": touched, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
