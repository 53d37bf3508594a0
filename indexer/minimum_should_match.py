"""OpenSearch's `minimum_should_match` arithmetic, for both backends and the settings check.

A leaf module: the embedded backend needs the number to build its query, the OpenSearch
backend sends it, and `indexer.settings` checks a configured spec with it.
"""

from __future__ import annotations


def required_words(spec: str | None, words: int) -> int:
    """How many of `words` query words a product must contain, for an OpenSearch
    `minimum_should_match` spec: an integer, a percentage, negative forms ("-1": all but
    one) and conditional ones ("3<-1 6<-2": up to 3 words all, up to 6 all but one, then all
    but two). None: one word is enough. Both backends send the integer this returns."""
    if words == 0:
        return 0
    if spec is None:
        return 1
    chosen = "100%"
    for part in spec.split():
        if "<" in part:
            limit, value = part.split("<", 1)
            if words > int(limit):
                chosen = value
        else:
            chosen = part
    value = chosen.strip()
    if value.endswith("%"):
        percent = float(value[:-1])
        count = int(words * abs(percent) / 100)
        need = words - count if percent < 0 else count
    else:
        number = int(value)
        need = words + number if number < 0 else number
    return max(1, min(words, need))
