"""Numbers and units in text: "3/4 in.", "1-1/2 in", '60"', "20V", "2.5 gal." become
canonical tokens, so a query's size can be matched against a product's."""

from __future__ import annotations

import math
import re

_UNITS = {
    "in": "in", "inch": "in", "inches": "in", '"': "in", "ft": "ft", "feet": "ft", "foot": "ft", "'": "ft",
    "gal": "gal", "gallon": "gal", "gallons": "gal", "lb": "lb", "lbs": "lb", "pound": "lb", "oz": "oz",
    "v": "v", "volt": "v", "volts": "v", "w": "w", "watt": "w", "watts": "w", "a": "a", "amp": "a", "amps": "a",
    "gpm": "gpm", "mm": "mm", "cm": "cm", "qt": "qt", "btu": "btu", "cu": "cuft", "sq": "sqft", "pk": "pk",
    "pack": "pk", "piece": "pc", "pc": "pc", "gauge": "ga", "ga": "ga", "mil": "mil", "ah": "ah", "psi": "psi",
}
_NUMBER_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:[-\s]\d+/\d+)|\d+/\d+|\d+(?:\.\d+)?)\s*-?\s*"
    r"(inches|inch|in\b|feet|foot|ft\b|gallons|gallon|gal\b|lbs|lb\b|pound|oz\b|volts|volt|v\b|watts|watt|w\b"
    r"|amps|amp|a\b|gpm|mm\b|cm\b|qt\b|btu|cu\b|sq\b|pk\b|pack|piece|pc\b|gauge|ga\b|mil\b|ah\b|psi|\"|')?",
    re.IGNORECASE,
)


def _to_number(text: str) -> float:
    text = text.replace("-", " ").strip()
    total = 0.0
    for part in text.split():
        if "/" in part:
            num, den = part.split("/", 1)
            total += float(num) / float(den) if float(den) else 0.0
        else:
            total += float(part)
    return total


def unit_tokens(text: str) -> set[str]:
    """Canonical number+unit tokens: '3/4 in.' -> '0.75in', '60"' -> '60in', '20V' -> '20v'.
    A number without a unit becomes '#60'."""
    tokens = set()
    for number, unit in _NUMBER_UNIT.findall(text):
        try:
            value = _to_number(number)
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        canonical = _UNITS.get(unit.lower().rstrip("."), "") if unit else ""
        tokens.add(f"{value:g}{canonical}" if canonical else f"#{value:g}")
    return tokens


def unit_kind(token: str) -> str:
    return token.lstrip("#0123456789.e-+") or "#"
