"""The shopper event endpoints: POST /events, GET /users/<id>/profile, DELETE /users/<id>,
and the record of every search (what was shown, against its query id).

Events are validated one by one: a bad event gets its own error naming the field and the
good ones of the same batch are kept. A body that is not JSON, not an event or a list of
them, or longer than MAX_BATCH is refused whole, and nothing of it is stored.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from indexer.store.base import BackendUnavailable, SearchReader
from ranker.events.facts import facts_from
from ranker.events.profile import Profile
from ranker.events.schema import EventError, iso_time, parse_event, ubi_document
from ranker.events.store import FactsOf, Search
from ranker.request import SearchRequest, SearchResponse
from ranker.serving import ServingState
from web.params import MAX_ID_LENGTH, PRINTABLE_ID, BadRequest

log = logging.getLogger(__name__)
MAX_BATCH = 1000
_SHOPPER_ID = re.compile(PRINTABLE_ID)


class EventsApi:
    def __init__(self, state: ServingState):
        self.state = state
        self.store = state.events
        self.ubi = state.backend.behavior_sink()  # the cluster's UBI indices, on a cluster backend
        self._facts: tuple[SearchReader, FactsOf] | None = None

    def facts(self) -> FactsOf:
        """One product lookup per serving generation."""
        reader = self.state.pipeline().reader
        if self._facts is None or self._facts[0] is not reader:
            self._facts = (reader, facts_from(reader))
        return self._facts[1]

    def record(self, search: SearchRequest, response: SearchResponse) -> None:
        """A failed record never fails the search: it is logged and the search answered."""
        shown = [r["id"] for r in response.results]
        now = time.time()
        try:
            self.store.record_search(Search(response.query_id, now, search.shopper.user_id,
                                            search.shopper.session_id, search.query, shown, response.rules),
                                     response.interleaving)
        except (sqlite3.Error, BackendUnavailable) as exc:
            log.warning("event=search_not_recorded error=%r", str(exc))
        if self.ubi is not None:
            self.ubi.queries([(response.query_id, {
                "application": "shoprank", "query_id": response.query_id, "user_query": search.query,
                "user_id": search.shopper.user_id, "session_id": search.shopper.session_id, "client_id": None,
                "query_response_id": response.query_id, "query_response_object_ids": shown,
                "query_attributes": {}, "timestamp": iso_time(now)})])

    def post_events(self) -> Response:
        if not request.is_json:
            raise UnsupportedMediaType("send events as Content-Type: application/json")
        try:
            body = json.loads(request.get_data(cache=False))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("body", f"is not JSON: {exc}") from None
        raw = [body] if isinstance(body, dict) else body
        if not isinstance(raw, list):
            raise BadRequest("body", "must be one event object or a JSON array of events")
        if len(raw) > MAX_BATCH:
            raise BadRequest("body", f"holds {len(raw)} events; the limit is {MAX_BATCH} per request")
        now = time.time()
        events, errors = [], []
        for index, item in enumerate(raw):
            try:
                events.append(parse_event(item, now))
            except EventError as exc:
                errors.append({"index": index, "message": str(exc)})
        added = self.store.add(events, self.facts()) if events else None
        if added is not None and self.ubi is not None:
            self.ubi.events([(e.key, ubi_document(e)) for e in added.stored])
        return jsonify({"accepted": added.accepted if added else 0, "duplicates": added.duplicates if added else 0,
                        "errors": errors})

    def get_profile(self, shopper_id: str) -> Response:
        """A shopper never seen (or erased) has an empty profile: what an anonymous search uses."""
        profile = self.store.profile(_shopper(shopper_id)) or Profile(half_life_days=self.store.half_life_days)
        return jsonify({"shopper_id": shopper_id, **profile.to_json(time.time())})

    def delete_shopper(self, shopper_id: str) -> Response:
        shopper = _shopper(shopper_id)
        linked = self.store.linked_sessions(shopper)
        self.store.erase(shopper)
        if self.ubi is not None:
            self.ubi.erase([shopper, *linked])
        return Response(status=204)


def _shopper(shopper_id: str) -> str:
    if not 1 <= len(shopper_id) <= MAX_ID_LENGTH or not _SHOPPER_ID.fullmatch(shopper_id):
        raise BadRequest("id", f"must be 1-{MAX_ID_LENGTH} printable characters")
    return shopper_id


def register(app: Flask, api: EventsApi) -> None:
    app.add_url_rule("/events", "post_events", api.post_events, methods=["POST"])
    app.add_url_rule("/users/<shopper_id>/profile", "get_profile", api.get_profile, methods=["GET"])
    app.add_url_rule("/users/<shopper_id>", "delete_shopper", api.delete_shopper, methods=["DELETE"])


