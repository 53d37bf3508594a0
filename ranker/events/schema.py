"""One shopper event, read from the OpenSearch User Behavior Insights (UBI) event format
or from the flat shorthand, with every problem named by its field.

UBI keeps the product in `event_attributes.object.object_id` and the position shown in
`event_attributes.position.ordinal`; the shorthand has them as `object_id` and
`position`. Both become the same `Event`. Positions are 1-based (the first result is 1).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ranker.request import MAX_ID_LENGTH, PRINTABLE_ID

# The actions ranking learns from, and their grade as a label (a purchase says more than
# a cart, a cart more than a click); other action names are stored and not used.
GRADES = {"click": 1, "add_to_cart": 2, "purchase": 3}
IMPRESSION = "impression"
PRODUCT_ACTIONS = (IMPRESSION, *GRADES)
MAX_ACTION_LENGTH = 64
_PRINTABLE = re.compile(PRINTABLE_ID)


class EventError(ValueError):
    """One event is not usable; `field` names where."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Event:
    key: str  # what makes it one event: its event_id, else its content
    action: str
    timestamp: float  # seconds since the epoch, UTC
    user_id: str | None
    session_id: str | None
    client_id: str | None
    query_id: str | None
    object_id: str | None
    position: int | None
    document: dict[str, Any]  # as received, for UBI tooling

    @property
    def shopper(self) -> str:
        """The shopper an event counts for: the user when known, else the session."""
        return self.user_id or self.session_id  # type: ignore[return-value]  # parse guarantees one


def _identifier(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":  # UBI clients send "" for an id they do not know
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH or not _PRINTABLE.fullmatch(value):
        raise EventError(name, f"must be 1-{MAX_ID_LENGTH} printable characters")
    return value


def _timestamp(raw: dict[str, Any], now: float) -> float:
    value = raw.get("timestamp")
    if value is None:
        return now
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e14:
        return float(value) / 1000.0  # epoch milliseconds, as UBI's JavaScript client writes Date.now()
    if not isinstance(value, str):
        raise EventError("timestamp", "must be ISO 8601, e.g. 2026-12-02T18:49:00Z, or epoch milliseconds")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventError("timestamp", f"is not ISO 8601: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _nested(raw: dict[str, Any], *path: str) -> Any:
    value: Any = raw
    for name in path:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise EventError(".".join(path[: path.index(name)]), "must be an object")
        value = value.get(name)
    return value


def _position(raw: dict[str, Any]) -> tuple[str, Any]:
    if "position" in raw:
        return "position", raw["position"]
    return "event_attributes.position.ordinal", _nested(raw, "event_attributes", "position", "ordinal")


def parse_event(raw: Any, now: float | None = None) -> Event:
    """An `Event`, or EventError naming the first field that is wrong."""
    if not isinstance(raw, dict):
        raise EventError("event", "must be a JSON object")
    now = time.time() if now is None else now
    action = raw.get("action_name")
    if not isinstance(action, str) or not 1 <= len(action) <= MAX_ACTION_LENGTH or not _PRINTABLE.fullmatch(action):
        raise EventError("action_name", f"is required: 1-{MAX_ACTION_LENGTH} printable characters, e.g. click")
    user_id, session_id, client_id = (_identifier(raw, "user_id"), _identifier(raw, "session_id"),
                                      _identifier(raw, "client_id"))
    if session_id is None and isinstance(raw.get("event_attributes"), dict):
        session_id = _identifier(raw["event_attributes"], "session_id")  # where some UBI clients put it
    if user_id is None and session_id is None:
        # UBI's one required id is the client's (the browser); it stands for the session
        session_id = client_id
    if user_id is None and session_id is None:
        raise EventError("user_id", "an event needs user_id, session_id or client_id (the shopper it counts for)")
    object_field = "object_id" if "object_id" in raw else "event_attributes.object.object_id"
    object_id = raw.get("object_id") if object_field == "object_id" else _nested(
        raw, "event_attributes", "object", "object_id")
    if object_id is not None and (not isinstance(object_id, str) or not 1 <= len(object_id) <= MAX_ID_LENGTH):
        raise EventError(object_field, f"must be a product id of 1-{MAX_ID_LENGTH} characters")
    if object_id is None and action in PRODUCT_ACTIONS:
        raise EventError(object_field, f"is required for {action} (the product id)")
    position_field, position = _position(raw)
    if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 1):
        raise EventError(position_field, "must be a whole number ≥ 1 (the first result is 1)")
    event_id = _identifier(raw, "event_id")
    event = dict(action=action, timestamp=_timestamp(raw, now), user_id=user_id, session_id=session_id,
                 client_id=client_id, query_id=_identifier(raw, "query_id"),
                 object_id=object_id, position=position)
    return Event(key=event_key(event_id, event), document=raw, **event)  # type: ignore[arg-type]


def event_key(event_id: str | None, event: dict[str, Any]) -> str:
    """An impression of a search is one per (search, product), whoever sends it: the
    server records what it showed, so a client's copy is a duplicate. Otherwise the
    client's `event_id`, else the event's content (same shopper, action, product, query
    and time)."""
    if event["action"] == IMPRESSION and event["query_id"]:
        return f"impression:{event['query_id']}:{event['object_id']}"
    if event_id is not None:
        return f"id:{event_id}"
    content = [event["user_id"] or event["session_id"], event["action"], event["object_id"], event["query_id"],
               round(event["timestamp"], 3)]
    return "sha1:" + hashlib.sha1(json.dumps(content).encode()).hexdigest()


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ubi_document(event: Event) -> dict[str, Any]:
    """The event in the UBI event format, whichever form it came in (what it was sent
    with, and the fields UBI tooling reads set from what was understood)."""
    document = dict(event.document)
    document.update({"action_name": event.action, "query_id": event.query_id, "user_id": event.user_id,
                     "session_id": event.session_id, "client_id": event.client_id,
                     "timestamp": iso_time(event.timestamp)})
    document.pop("object_id", None)
    document.pop("position", None)
    attributes = dict(document.get("event_attributes") or {})
    if event.object_id is not None:
        attributes["object"] = {**(attributes.get("object") or {}), "object_id": event.object_id,
                                "object_id_field": "id"}
    if event.position is not None:
        attributes["position"] = {**(attributes.get("position") or {}), "ordinal": event.position}
    document["event_attributes"] = attributes
    return document
