"""The OpenAPI 3.1 document of the JSON API, built from the same parameter table that
validates requests (web/params.py), so it says what the server does. The test suite
runs schemathesis against it with every check on (tests/test_api_contract.py)."""

from __future__ import annotations

from typing import Any

from web.events_api import MAX_BATCH
from web.params import ATTRIBUTE_NAME, MAX_ID_LENGTH, NOT_BLANK, PARAMS, PRINTABLE_ID

_ERROR = {"type": "object", "required": ["error", "message"], "additionalProperties": False, "properties": {
    "error": {"type": "string", "description": "A stable code: bad_request, no_index, backend_unavailable, …"},
    "message": {"type": "string", "description": "One sentence for a person; no stack trace, no server path."},
    "parameter": {"type": "string", "description": "The request parameter that is wrong (400 only)."}}}
_BUCKET = {"type": "object", "required": ["value", "count"], "properties": {
    "value": {"type": "string"}, "count": {"type": "integer", "minimum": 1},
    "from": {"type": ["number", "null"]}, "to": {"type": ["number", "null"]}}}
_RESULT = {"type": "object", "required": ["id", "title", "score"], "properties": {
    "id": {"type": "string"}, "title": {"type": "string"}, "brand": {"type": "string"},
    "category": {"type": "string"}, "price": {"type": "number"}, "currency": {"type": "string"},
    "in_stock": {"type": "boolean"}, "rating": {"type": "number"}, "review_count": {"type": "integer"},
    "image_url": {"type": "string"}, "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    "score": {"type": "number"},
    "explain": {"type": "object", "description": "BM25 and vector rank and score, the fused score and, when a "
                                                 "learned model ranks, each model's score and the features."}}}
_SEARCH_RESPONSE = {
    "type": "object",
    "required": ["query", "corrected_query", "total", "results", "facets", "took_ms", "generation", "query_id"],
    "properties": {
        "query": {"type": "string"},
        "corrected_query": {"type": ["string", "null"], "description": "The words searched, when correction changed the query."},
        "total": {"type": "integer", "minimum": 0, "description": "Products matching the query text or among its "
                  "vector candidates, after filters; the same for every page."},
        "results": {"type": "array", "items": _RESULT},
        "facets": {"type": "object", "additionalProperties": {"type": "array", "items": _BUCKET}},
        "took_ms": {"type": "number"},
        "generation": {"type": "string"},
        "query_id": {"type": "string", "minLength": 1, "description": "Unique per search; shopper events and the "
                     "feature log carry it."},
        "timings": {"type": "object", "additionalProperties": {"type": "number"},
                    "description": "Milliseconds per pipeline stage (timings=true)."},
    }}
_EVENTS_BODY = {"description": f"One event, or an array of up to {MAX_BATCH}: OpenSearch UBI events (`action_name`, "
                "`query_id`, `client_id`, `user_id`, `session_id`, `timestamp`, `event_attributes.object.object_id`, "
                "`event_attributes.position.ordinal` (1-based), `event_id`) or the flat shorthand (`object_id`, "
                "`position`). Each event is checked on its own: a bad one is listed in `errors` and the others kept.",
                "anyOf": [{"type": "object"}, {"type": "array", "maxItems": MAX_BATCH}]}
_EVENTS_ANSWER = {"type": "object", "required": ["accepted", "duplicates", "errors"], "properties": {
    "accepted": {"type": "integer", "minimum": 0, "description": "Events stored (durably) by this request."},
    "duplicates": {"type": "integer", "minimum": 0, "description": "Events already stored: not counted again."},
    "errors": {"type": "array", "items": {"type": "object", "required": ["index", "message"], "properties": {
        "index": {"type": "integer", "minimum": 0}, "message": {"type": "string"}}}}}}
_WEIGHTS = {"type": "array", "items": {"type": "object", "required": ["value", "weight"], "properties": {
    "value": {"type": "string"}, "weight": {"type": "number"}}}}
_PROFILE = {"type": "object", "required": ["shopper_id", "evidence", "event_counts", "brands", "categories"],
            "properties": {
                "shopper_id": {"type": "string"}, "half_life_days": {"type": "number"},
                "evidence": {"type": "number", "description": "Engagement weight, decayed to now."},
                "event_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "last_update": {"type": ["number", "null"], "description": "Seconds since the epoch."},
                "brands": _WEIGHTS, "categories": _WEIGHTS, "attributes": _WEIGHTS, "products": _WEIGHTS,
                "price_band": {"type": ["object", "null"]}, "has_embedding": {"type": "boolean"}}}
_SHOPPER = {"name": "shopper_id", "in": "path", "required": True, "description": "A user id or a session id.",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": PRINTABLE_ID}}
_HEALTH = {"type": "object", "required": ["status", "generation", "documents", "ranker"], "properties": {
    "status": {"type": "string"}, "generation": {"type": "string"}, "documents": {"type": "integer"},
    "ranker": {"type": ["string", "null"], "description": "The served model's version (null: recall order)"},
    "personal": {"type": "boolean", "description": "Whether the served model uses the personal features"}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _parameters() -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": p.name, "in": "query", "required": p.required, "description": p.description,
         **({"schema": {"type": "array", "items": p.schema}, "style": "form", "explode": True} if p.repeatable
            else {"schema": p.schema})}
        for p in PARAMS
    ]
    # Free-form query parameters: every property of this object is a parameter of its own
    # (`attr.color=blue`), which is what style form + explode means for an object.
    parameters.append({
        "name": "attr", "in": "query", "required": False, "style": "form", "explode": True,
        "description": "Attribute filters: a parameter `attr.NAME` per attribute, e.g. `attr.color=blue`; repeat "
                       "one for any of several values.",
        "schema": {"type": "object", "propertyNames": {"pattern": ATTRIBUTE_NAME},
                   "additionalProperties": {"type": "string", "minLength": 1, "pattern": NOT_BLANK}}})
    return parameters


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ShopRank search API", "version": "1.1.0",
                 "description": "Product search. Every error is a JSON `Error`. An empty parameter value is a 400 "
                                "like any other bad value: leave the parameter out instead. "
                                f"`user_id` and `session_id` are 1–{MAX_ID_LENGTH} printable characters. "
                                "The HTML search page at `/` takes the same parameters."},
        "paths": {
            "/search": {"get": {
                "summary": "Hybrid product search with filters and facets",
                "parameters": _parameters(),
                "responses": {
                    "200": _json("Results", "SearchResponse"),
                    "400": _json("A parameter is missing or wrong (`parameter` names it)", "Error"),
                    "414": _json("The request line is longer than the server reads (4094 bytes)", "Error"),
                    "503": _json("No index to serve yet, or the search cluster is unreachable", "Error")}}},
            "/healthz": {"get": {"summary": "Serving generation and document count", "responses": {
                "200": _json("Serving", "Health"),
                "503": _json("No index to serve yet, or the search cluster is unreachable", "Error")}}},
            "/events": {"post": {
                "summary": "Shopper events in (clicks, carts, purchases, …): durable before the answer, each once",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _EVENTS_BODY}}},
                "responses": {
                    "200": _json("Stored; bad events listed by index", "EventsAccepted"),
                    "400": _json("Not JSON, not events, or too many: nothing stored", "Error"),
                    "413": _json("The body is larger than the server reads", "Error"),
                    "415": _json("Not sent as application/json", "Error")}}},
            "/users/{shopper_id}/profile": {"get": {
                "summary": "What personalization knows of a shopper", "parameters": [_SHOPPER],
                "responses": {"200": _json("The profile (empty for a shopper never seen)", "Profile"),
                              "400": _json("The id is not 1-128 printable characters", "Error")}}},
            "/users/{shopper_id}": {"delete": {
                "summary": "Erase a shopper: every event, search and profile of the id and its linked sessions",
                "parameters": [_SHOPPER],
                "responses": {"204": {"description": "Erased (also when there was nothing to erase)"},
                              "400": _json("The id is not 1-128 printable characters", "Error")}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": {"Error": _ERROR, "SearchResponse": _SEARCH_RESPONSE, "Health": _HEALTH,
                                  "EventsAccepted": _EVENTS_ANSWER, "Profile": _PROFILE}},
    }
