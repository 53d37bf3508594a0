"""Links of the search page: the current query string with one change, keeping every
value of a repeated parameter (two `brand=` filters stay two)."""

from __future__ import annotations

from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict


def _repeatable(name: str) -> bool:
    return name == "brand" or name.startswith("attr.")


class PageLinks:
    def __init__(self, args: MultiDict):
        self.pairs = [(k, v) for k, v in args.items(multi=True)]

    def _link(self, pairs: list[tuple[str, str]]) -> str:
        return "/?" + urlencode(pairs)

    def _filtered(self) -> list[tuple[str, str]]:
        """The current filters, without the page offset (a new filter starts at page one)."""
        return [(k, v) for k, v in self.pairs if k != "offset"]

    def adding(self, name: str, value: object) -> str:
        """Filter by this value too: added to a repeatable filter (any of several brands),
        replacing a single-valued one."""
        pairs = self._filtered()
        if not _repeatable(name):
            pairs = [(k, v) for k, v in pairs if k != name]
        elif (name, str(value)) in pairs:
            return self._link(pairs)
        return self._link([*pairs, (name, str(value))])

    def price(self, low: float | None, high: float | None) -> str:
        """A price facet bucket: from `low` inclusive to `high` exclusive, as it was counted."""
        pairs = [(k, v) for k, v in self._filtered() if k not in ("price_min", "price_max", "price_below")]
        if low is not None:
            pairs.append(("price_min", f"{low:g}"))
        if high is not None:
            pairs.append(("price_below", f"{high:g}"))
        return self._link(pairs)

    def removing(self, name: str, value: str) -> str:
        """The same search without this one filter value."""
        return self._link([(k, v) for k, v in self._filtered() if (k, v) != (name, value)])

    def replacing(self, name: str, value: object) -> str:
        pairs = [(k, v) for k, v in self.pairs if k != name]
        return self._link([*pairs, (name, str(value))])

    def page(self, offset: int) -> str:
        return self._link([*self._filtered(), ("offset", str(offset))])

    def searching(self, query: str, keep_filters: bool) -> str:
        """Another query, with the current filters or with none of them."""
        if keep_filters:
            return self.adding("q", query)
        return self._link([("q", query), *((k, v) for k, v in self.pairs if k in ("sort", "k"))])
