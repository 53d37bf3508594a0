"""How often query correction helps and how often it harms, careful against the corrector
before it (the one that corrected every word the catalog lacks), on real queries.

    python bench/spelling.py --data-dir DIR --judgments FILE [--typos 2000] [--json OUT]

Two sets, both from DIR's catalog and FILE's queries:
- **Real queries** (every judged query, with its real misspellings and its correct
  words): a correction is judged by what it does to the query's own relevant products
  (judged relevance above the lowest grade) that BM25 finds in its top 100. It *fixes*
  the query when that recall rises and *harms* it when it falls; a change that moves
  neither is neutral. A false correction is a harm; the target is at most 1% of queries.
- **Made-up typos**: three consecutive words of a random product title (correct by
  construction), one word of five letters or more given one random edit (a letter
  dropped, doubled, swapped with the next or replaced). A fix is the title's word back.

Prints, for each corrector, the queries changed, fixed and harmed, and the typos fixed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from indexer.store.base import Filters, TextQuery  # noqa: E402
from ranker.evaluate import known_judgments, read_judgments  # noqa: E402
from ranker.metrics import recall_at  # noqa: E402
from ranker.spelling import QueryCorrector, query_corrector  # noqa: E402

_WORD = re.compile(r"^[A-Za-z]+$")


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    kind = rng.choice(("drop", "double", "swap", "replace"))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[: i + 1] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice(string.ascii_lowercase.replace(word[i], "")) + word[i + 1 :]


def made_up_typos(titles: list[str], count: int, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    while len(out) < count:
        words = rng.choice(titles).lower().split()
        if len(words) < 3:
            continue
        start = rng.randrange(len(words) - 2)
        phrase = words[start : start + 3]
        long_words = [n for n, w in enumerate(phrase) if _WORD.match(w) and len(w) >= 5]
        if not long_words:
            continue
        n = rng.choice(long_words)
        typed = [*phrase[:n], typo(phrase[n], rng), *phrase[n + 1 :]]
        if typed[n] != phrase[n]:
            out.append((" ".join(typed), " ".join(phrase)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--judgments", type=Path, required=True)
    parser.add_argument("--typos", type=int, default=2000)
    parser.add_argument("--json")
    args = parser.parse_args()
    reader = open_backend(settings.data_dir(args.data_dir)).reader()
    careful = query_corrector(reader)
    assert careful is not None, "the index has no dictionary"
    correctors = {"before": QueryCorrector(careful.counts, careful.analyze, careful=False), "careful": careful}
    judgments, queries = known_judgments(read_judgments(args.judgments), reader, 0)

    def found(text: str, query: str) -> float | None:
        ids = [h.id for h in reader.bm25(TextQuery(text), 100, Filters())]
        return recall_at(ids, judgments[query], 100)

    typed_recall = {q: found(q, q) for q in queries}
    titles = [p["title"] for p in reader.products(sorted({i for js in judgments.values() for i in js}))]
    typos = made_up_typos(titles, args.typos, random.Random(7))
    results = {}
    print(f"{len(queries):,} real queries, {len(typos):,} made-up typos")
    print(f"{'corrector':<10} {'changed':>8} {'fixed':>7} {'harmed':>7} {'harmed %':>9} {'typos fixed':>12}")
    for name, corrector in correctors.items():
        changed = fixed = harmed = 0
        for q in queries:
            text = corrector.correct(q)
            if text == q:
                continue
            changed += 1
            before, after = typed_recall[q], found(text, q)
            if before is None or after is None or after == before:
                continue
            fixed += after > before
            harmed += after < before
        typo_fixes = sum(corrector.correct(t) == right for t, right in typos)
        results[name] = {"changed": changed, "fixed": fixed, "harmed": harmed,
                         "harmed_share": round(harmed / len(queries), 4), "typos_fixed": typo_fixes,
                         "typos": len(typos)}
        print(f"{name:<10} {changed:>8,} {fixed:>7,} {harmed:>7,} {100 * harmed / len(queries):>8.2f}% "
              f"{typo_fixes:>7,} / {len(typos):,}")
    if args.json:
        Path(args.json).write_text(json.dumps({"queries": len(queries), "correctors": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
