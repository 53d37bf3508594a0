"""Text analysed as the mapping defines each field, in process.

The analyzers of `mappings/products.json` (tokenizer + token filters) built with
tantivy's analysis library. The embedded backend indexes with them; on either backend,
ranking features and query correction tokenize with them, so a query is cut into the
same words the index holds. A mapping feature that cannot be honoured here is refused
with a MappingError rather than silently approximated.
"""

from __future__ import annotations

from tantivy import Filter, TextAnalyzer, TextAnalyzerBuilder, Tokenizer

from indexer.mapping import IndexDefinition, MappingError

_TOKENIZERS = {"standard": Tokenizer.simple, "whitespace": Tokenizer.whitespace, "keyword": Tokenizer.raw}
_TOKEN_FILTERS = {
    "lowercase": Filter.lowercase,
    "asciifolding": Filter.ascii_fold,
    "porter_stem": lambda: Filter.stemmer("english"),
    "kstem": lambda: Filter.stemmer("english"),
    "stop": lambda: Filter.stopword("english"),
}


def build_analyzers(definition: IndexDefinition) -> dict[str, TextAnalyzer]:
    analyzers = {}
    for name, spec in definition.analyzers.items():
        tokenizer = _TOKENIZERS.get(spec.get("tokenizer", "standard"))
        if tokenizer is None:
            raise MappingError(f"analyzer {name!r}: tokenizer {spec.get('tokenizer')!r} is not supported")
        builder = TextAnalyzerBuilder(tokenizer())
        for token_filter in spec.get("filter", []):
            if token_filter not in _TOKEN_FILTERS:
                raise MappingError(f"analyzer {name!r}: filter {token_filter!r} is not supported")
            builder = builder.filter(_TOKEN_FILTERS[token_filter]())
        analyzers[name] = builder.build()
    return analyzers


class FieldAnalyzer:
    """`analyze(text, field)`: the tokens the index holds for `text` in `field`."""

    def __init__(self, definition: IndexDefinition):
        self.definition = definition
        self.analyzers = build_analyzers(definition)

    def __call__(self, text: str, field: str = "title") -> list[str]:
        return self.analyzers[self.definition.field(field).analyzer or ""].analyze(text)
