"""Query correction against the catalog's own words: misspellings, compounds, glued units.

Shoppers type "cieling fan", "rustoleum", "18v drill" and "2x4"; the products say
"Ceiling Fan", "Rust-Oleum", "18-Volt" and "2 in. x 4 in.". A word the catalog never
uses matches nothing in BM25, so only such words are rewritten; every word the catalog
knows (as typed or after the index's stemming) is left exactly as the shopper wrote it.
On the Home Depot judgments it lifts hybrid recall (docs/ranking.md has the figures and
the command).

The dictionary is the catalog itself (`indexer.documents.term_counts`), so a brand name is never
"corrected" into an English word; candidates come from SymSpell (symmetric-delete edit
distance), the most frequent of the closest wins.

A correction must also be clearly better, since a wrong one is worse than none ("oak
dinning tabel" -> "oak running table"): a common English word is never corrected even
when the catalog lacks it ("products", "dining"; wordfreq's frequencies), a word written
with field syntax ("title:sofa") is left as typed, and a correction two edits away is
kept only when some product has it together with another word of the query
(`matches`), which the word as typed, unknown to the catalog, never has. With that
check, words of five letters and more may be two edits away ("condiut"). bench/spelling.py
measures it against the corrector before these checks (docs/relevance.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from symspellpy import SymSpell, Verbosity
from wordfreq import zipf_frequency

from indexer.store.base import Filters, SearchReader, TextQuery
from ranker.stages import SearchContext

_QUERY_WORD = re.compile(r"[A-Za-z0-9]+")
_DIMENSIONS = re.compile(r"(?<=\d)[xX](?=\d)")  # "2x4" -> "2 x 4", as titles write "2 in. x 4 in."
_GLUED_UNIT = re.compile(r"^(\d+)([a-z]+)$")  # "18v", "12ft", "36in"
# Unit abbreviations shoppers glue to numbers -> the word titles use ("18-Volt").
UNIT_WORDS = {"v": "volt", "w": "watt", "a": "amp", "in": "in", "ft": "ft", "gal": "gal", "lb": "lb",
              "lbs": "lb", "oz": "oz", "mm": "mm", "cm": "cm", "hp": "hp", "qt": "qt", "btu": "btu",
              "cu": "cu", "sq": "sq", "ah": "ah", "psi": "psi", "gpm": "gpm", "pk": "pack"}
MIN_CORRECTED_LENGTH = 4  # shorter words are too ambiguous ("blk", "apt") to correct
MIN_CONTEXT_DISTANCE2 = 5  # a shorter word is corrected by one edit at most
MIN_COMPOUND_PART = 3  # "rustoleum" -> "rust oleum", but never "gal van ise"
# A word at least this frequent in English (wordfreq's Zipf scale: 3 is once per million
# words) is a word, not a misspelling: "products", "dining"; "recieve" is 2.75.
COMMON_ENGLISH_ZIPF = 3.0


def common_english(word: str) -> bool:
    return zipf_frequency(word, "en") >= COMMON_ENGLISH_ZIPF


class QueryCorrector:
    """Rewrites the words of a query that the catalog does not know; see the module doc.

    `matches(text)`: does some product have every word of `text`? None: no context check
    (every clearly unknown word is corrected). `careful=False` is the corrector before the
    English and context checks, kept for bench/spelling.py's comparison."""

    def __init__(self, counts: Mapping[str, int], analyze: Callable[[str], list[str]],
                 matches: Callable[[str], bool] | None = None, careful: bool = True):
        self.counts = counts
        self.analyze = analyze
        self.matches = matches
        self.careful = careful
        self.stems = {stem for word in counts for stem in analyze(word)}
        self.dictionary = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for word, count in counts.items():
            if len(word) >= MIN_COMPOUND_PART and not word.isdigit():
                self.dictionary.create_dictionary_entry(word, count)

    def known(self, word: str) -> bool:
        if word in self.counts:
            return True
        stems = self.analyze(word)
        return bool(stems) and all(stem in self.stems for stem in stems)

    def correct(self, query: str) -> str:
        """The query with each unknown word replaced; unchanged when every word is known."""
        spaced = _DIMENSIONS.sub(" x ", query)
        if spaced != query and all(self.known(w.lower()) for w in _QUERY_WORD.findall(query)):
            spaced = query  # the catalog writes "2x4" as one word too: keep it
        words = spaced.split()
        out: list[str] = []
        for n, word in enumerate(words):
            if self.careful and ":" in word:  # field syntax ("title:sofa"): as typed
                out.append(word)
                continue
            # the other words as they stand: those corrected so far, and the known ones to come
            context = [w for w in [*out, *words[n + 1 :]] if self.known_text(w)]
            out.append(_QUERY_WORD.sub(lambda m, c=context: self._in_context(m.group(0), c), word))
        return spaced if out == words else " ".join(out)

    def _in_context(self, typed: str, context: list[str]) -> str:
        """A correction two edits away must also fit the query: some product has it with
        one of the query's other words ("oak dinning" -> "oak running" has none)."""
        corrected, distance = self._word(typed)
        if distance < 2 or not self.careful or self.matches is None or not context:
            return corrected
        return corrected if any(self.matches(f"{corrected} {other}") for other in context) else typed

    def known_text(self, text: str) -> bool:
        return all(w.isdigit() or self.known(w.lower()) for w in _QUERY_WORD.findall(text))

    def _word(self, typed: str) -> tuple[str, int]:
        """The word's correction and its edit distance (0: unchanged, split or unglued)."""
        word = typed.lower()
        if word.isdigit() or self.known(word):
            return typed, 0
        glued = _GLUED_UNIT.match(word)
        if glued and (glued[2] in UNIT_WORDS or self.known(glued[2])):
            return f"{glued[1]} {UNIT_WORDS.get(glued[2], glued[2])}", 0
        if len(word) < MIN_CORRECTED_LENGTH or not word.isalpha():
            return typed, 0
        if self.careful and common_english(word):
            return typed, 0
        max_distance = 1 if len(word) < (MIN_CONTEXT_DISTANCE2 if self.careful and self.matches else 7) else 2
        suggestions = self.dictionary.lookup(word, Verbosity.CLOSEST, max_edit_distance=max_distance,
                                             transfer_casing=False)
        if not suggestions or suggestions[0].distance > 1:
            parts = self.dictionary.word_segmentation(word, max_edit_distance=0).corrected_string.split()
            if len(parts) > 1 and all(len(p) >= MIN_COMPOUND_PART and p in self.counts for p in parts):
                return " ".join(parts), 0
        if suggestions:
            best = max(suggestions, key=lambda s: s.count)
            return best.term, best.distance
        return typed, 0


def query_corrector(reader: SearchReader) -> QueryCorrector | None:
    """The corrector for a reader's index; None for an index without a dictionary (an
    OpenSearch index built before there was one), which then searches words as typed."""
    counts = reader.term_counts()
    if not counts:
        return None

    def matches(text: str) -> bool:
        return bool(reader.bm25(TextQuery(text, (), "100%"), 1, Filters()))

    return QueryCorrector(counts, reader.analyze, matches)


class CorrectStage:
    """The request's query -> the text every later stage searches: corrected unless the
    request says not to, or the index has no dictionary."""

    name = "correct"

    def __init__(self, corrector: QueryCorrector | None):
        self.corrector = corrector

    def __call__(self, search: SearchContext) -> str:
        if self.corrector is None or not search.request.correct:
            return search.request.query
        return self.corrector.correct(search.request.query)
