"""The OpenAPI 3.1 document of the JSON API, built from the same parameter table that
validates requests (web/params.py), so it says what the server does. The test suite
runs schemathesis against it with every check on (tests/test_api_contract.py)."""

from __future__ import annotations

from typing import Any

from web.events_api import MAX_BATCH
from web.params import ATTRIBUTE_NAME, MAX_ID_LENGTH, NOT_BLANK, PARAMS, PRINTABLE_ID, SUGGEST_PARAMS, Param

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
    "required": ["query", "corrected_query", "total", "results", "facets", "took_ms", "generation", "query_id",
                 "understood", "suggestions"],
    "properties": {
        "query": {"type": "string"},
        "corrected_query": {"type": ["string", "null"], "description": "The words searched, when correction changed the query."},
        "total": {"type": "integer", "minimum": 0, "description": "Products matching the query well enough (enough "
                  "of its words, or a vector neighbour above the similarity threshold), after filters; the same for "
                  "every page."},
        "results": {"type": "array", "items": _RESULT},
        "facets": {"type": "object", "additionalProperties": {"type": "array", "items": _BUCKET}},
        "took_ms": {"type": "number"},
        "generation": {"type": "string"},
        "query_id": {"type": "string", "minLength": 1, "description": "Unique per search; shopper events and the "
                     "feature log carry it."},
        "timings": {"type": "object", "additionalProperties": {"type": "number"},
                    "description": "Milliseconds per pipeline stage (timings=true)."},
        "redirect": {"type": "string", "description": "A redirect rule's URL: the page goes there."},
        "did_you_mean": {"type": "string", "description": "When the query's words matched no product (the results "
                         "are only its nearest vectors): a query like it whose words do."},
        "understood": {"type": "array", "description": "Catalog values the query's words name (an attribute value, a "
                       "brand, a category), offered as filters; never applied by themselves.",
                       "items": {"type": "object", "required": ["field", "value", "text"], "properties": {
                           "field": {"type": "string", "description": "attr.<name>, brand or category: the filter "
                                     "parameter"},
                           "value": {"type": "string"}, "text": {"type": "string", "description": "the words naming it"}}}},
        "suggestions": {"type": "array", "description": "With no results: searches that find products (a corrected "
                        "spelling, the query without its rarest word, the query without its filters).",
                        "items": {"type": "object", "required": ["query", "reason", "filters", "total"], "properties": {
                            "query": {"type": "string"},
                            "reason": {"enum": ["spelling", "fewer_words", "no_filters"]},
                            "filters": {"type": "boolean", "description": "whether the search's filters are kept"},
                            "total": {"type": "integer", "minimum": 1}}}},
    }}
_SUGGESTIONS = {"type": "object", "required": ["query", "suggestions"], "properties": {
    "query": {"type": "string"},
    "suggestions": {"type": "array", "items": {"type": "object", "required": ["text", "source"], "properties": {
        "text": {"type": "string"},
        "source": {"enum": ["query", "catalog"], "description": "query: searched by several shoppers lately; "
                                                               "catalog: the catalog's own words"}}}}}}
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


_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NOT_BLANK}
_SCOPE = {"type": "object", "additionalProperties": False, "properties": {
    "query": _TEXT, "match": {"enum": ["equals", "contains", "starts_with", "regex", "any"]}, "category": _TEXT}}
_CONDITION = {"oneOf": [
    {"type": "object", "required": ["ids"], "additionalProperties": False,
     "properties": {"ids": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _TEXT}}},
    {"type": "object", "required": ["field", "value"], "additionalProperties": False,
     "properties": {"field": {"type": "string", "pattern": r"^(brand|category|title|currency|attributes\.[a-z0-9_]+)$"},
                    "value": _TEXT}},
    {"type": "object", "required": ["field", "value"], "additionalProperties": False,
     "properties": {"field": {"const": "in_stock"}, "value": {"type": "boolean"}}},
    {"type": "object", "required": ["field", "min"], "additionalProperties": False,
     "properties": {"field": {"enum": ["price", "rating", "review_count"]}, "min": {"type": "number"},
                    "max": {"type": "number"}}}]}
_COMMON = {"scope": _SCOPE, "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
           "enabled": {"type": "boolean"}, "note": {"type": "string", "maxLength": 1000},
           "starts_at": {"type": ["string", "null"], "format": "date-time"},
           "ends_at": {"type": ["string", "null"], "format": "date-time"}}


def _kind(kind: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["kind", "scope", *required], "additionalProperties": False,
            "properties": {"kind": {"const": kind}, **_COMMON, **properties}}


_STRENGTH = {"type": "number", "exclusiveMinimum": 0, "maximum": 100}
_RULE_BODY = {"description": (
    "A merchandising rule (docs/merchandising.md). Checked beyond this schema: a pinned product must be in the "
    "catalog, `ends_at` after `starts_at`, a regex scope valid and without nested quantifiers, a range's max at "
    "least its min; each is a 400 naming the field."), "oneOf": [
    _kind("pin", ["products"], products={"type": "array", "minItems": 1, "maxItems": 50, "items": {
        "type": "object", "required": ["id", "position"], "additionalProperties": False,
        "properties": {"id": _TEXT, "position": {"type": "integer", "minimum": 1, "maximum": 1000}}}}),
    *(_kind(k, ["condition"], condition=_CONDITION) for k in ("hide", "bury", "filter")),
    *(_kind(k, ["condition"], condition=_CONDITION, strength=_STRENGTH) for k in ("boost", "demote")),
    _kind("synonym", ["terms"], terms={"type": "array", "minItems": 2, "maxItems": 50, "uniqueItems": True,
                                       "items": _TEXT}, one_way={"type": "boolean"}),
    _kind("rewrite", ["to"], to=_TEXT),
    _kind("redirect", ["url"], url={"type": "string", "pattern": r"^(https?://|/)\S{0,2000}$"}),
    _kind("diversify", ["field", "max"], condition=_CONDITION,
          field={"type": "string", "pattern": r"^(brand|category|attributes\.[a-z0-9_]+)$"},
          max={"type": "integer", "minimum": 1, "maximum": 100})]}
_RULE = {"type": "object", "required": ["id", "kind", "scope", "version"], "properties": {
    "id": {"type": "string"}, "kind": {"type": "string"}, "scope": {"type": "object"},
    "version": {"type": "integer", "minimum": 1}, "updated": {"type": "number"}}}
_RULES = {"type": "object", "required": ["rules"], "properties": {
    "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}}}}
_HISTORY = {"type": "object", "required": ["id", "versions"], "properties": {
    "id": {"type": "string"}, "versions": {"type": "array", "items": {
        "type": "object", "required": ["version", "at", "who", "action"], "properties": {
            "version": {"type": "integer", "minimum": 1}, "at": {"type": "number"}, "who": {"type": "string"},
            "action": {"type": "string", "enum": ["create", "update", "delete", "restore"]},
            "before": {"type": ["object", "null"]}, "after": {"type": ["object", "null"]}}}}}}
_PREVIEW = {"type": "object", "required": ["live", "draft", "changes"], "properties": {
    "live": {"$ref": "#/components/schemas/SearchResponse"}, "draft": {"$ref": "#/components/schemas/SearchResponse"},
    "changes": {"type": "array", "items": {"type": "object", "required": ["id", "change"], "properties": {
        "id": {"type": "string"}, "change": {"type": "string", "enum": ["moved", "added", "removed", "unchanged"]}}}}}}
_FIGURES = {"type": "object", "required": ["searches", "per_search", "on_its_products"], "properties": {
    "searches": {"type": "integer", "minimum": 0}, "per_search": {"type": "object"},
    "on_its_products": {"type": "object"}, "on_its_products_per_search": {"type": "object"},
    "of": {"type": "string"}}}
_IMPACT = {"type": "object", "required": ["rule", "queries", "touched", "baseline"], "properties": {
    "rule": {"type": "string"}, "queries": {"type": "array", "items": {"type": "string"}},
    "touched": _FIGURES, "baseline": _FIGURES}}
_TOKENS = {"type": "object", "required": ["tokens"], "properties": {"tokens": {"type": "array", "items": {
    "type": "object", "required": ["name", "role"], "properties": {"name": {"type": "string"},
                                                                     "role": {"type": "string"}}}}}}
_RULE_ID = {"name": "rule_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_TOKEN_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_TOKEN_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["name", "role"], "additionalProperties": False, "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
        "role": {"enum": ["viewer", "editor", "admin"]}}}}}}


def _admin(summary: str, role: str, ok: dict[str, Any], *, body: dict[str, Any] | None = None,
           parameters: list[dict[str, Any]] | None = None, missing: bool = False) -> dict[str, Any]:
    """An admin operation: a bearer token of `role` or above."""
    responses = {**ok, "401": _json("No token, or an unknown or revoked one", "Error"),
                 "403": _json(f"The token's role is below {role}", "Error")}
    if body is not None:
        responses.update({"400": _json("The body is not valid (`parameter` names the field)", "Error"),
                          "415": _json("Not sent as application/json", "Error")})
    if missing:
        responses["404"] = _json("No such rule or token", "Error")
    return {"summary": f"{summary} (role: {role})", "security": [{"bearer": []}], "responses": responses,
            **({"requestBody": body} if body is not None else {}), **({"parameters": parameters} if parameters else {})}


def _preview_body() -> dict[str, Any]:
    """`rules`: draft rules; every other property is one /search parameter's value."""
    return {"type": "object", "required": ["q"], "additionalProperties": False,
            "description": "`rules`: draft rules (one with a stored rule's `id` replaces it); every other property "
                           "is a /search parameter, one value each (`attr.NAME` too)",
            "properties": {**{p.name: p.schema for p in PARAMS},
                           "rules": {"type": "array", "maxItems": 100, "items": _RULE_BODY}},
            "patternProperties": {ATTRIBUTE_NAME: {"type": "string", "minLength": 1, "pattern": NOT_BLANK}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _query_parameter(p: Param) -> dict[str, Any]:
    return {"name": p.name, "in": "query", "required": p.required, "description": p.description,
            **({"schema": {"type": "array", "items": p.schema}, "style": "form", "explode": True} if p.repeatable
               else {"schema": p.schema})}


def _parameters() -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [_query_parameter(p) for p in PARAMS]
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
            "/suggest": {"get": {
                "summary": "Type-ahead: popular past queries and the catalog's words that complete what is typed",
                "parameters": [_query_parameter(p) for p in SUGGEST_PARAMS],
                "responses": {
                    "200": _json("Suggestions, best first", "Suggestions"),
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
            "/admin/rules": {
                "get": _admin("Every merchandising rule", "viewer", {"200": _json("The rules", "Rules")}),
                "post": _admin("Add a rule", "editor", {"201": _json("Stored, version 1", "Rule")},
                               body={"required": True, "content": {"application/json": {"schema": _RULE_BODY}}})},
            "/admin/rules/{rule_id}": {
                "get": _admin("One rule", "viewer", {"200": _json("The rule", "Rule")}, parameters=[_RULE_ID],
                              missing=True),
                "put": _admin("Replace a rule (a new version)", "editor", {"200": _json("Stored", "Rule")},
                              body={"required": True, "content": {"application/json": {"schema": _RULE_BODY}}},
                              parameters=[_RULE_ID], missing=True),
                "delete": _admin("Delete a rule (a version too: it can be restored)", "editor",
                                 {"204": {"description": "Deleted"}}, parameters=[_RULE_ID], missing=True)},
            "/admin/rules/{rule_id}/history": {"get": _admin(
                "Every version of a rule: who, when, before and after", "viewer",
                {"200": _json("The versions, oldest first", "RuleHistory")}, parameters=[_RULE_ID], missing=True)},
            "/admin/rules/{rule_id}/impact": {"get": _admin(
                "Searches the rule touched and the clicks, carts and purchases after them, against the same "
                "queries before the rule", "viewer", {"200": _json("The rule's impact", "RuleImpact")},
                parameters=[_RULE_ID], missing=True)},
            "/admin/rules/{rule_id}/restore": {"post": _admin(
                "The rule as it was after a version, as a new version", "editor",
                {"200": _json("Restored", "Rule")}, parameters=[_RULE_ID], missing=True, body={
                    "required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["version"],
                        "properties": {"version": {"type": "integer", "minimum": 1}}}}}})},
            "/admin/preview": {"post": _admin(
                "A search with the rules in force and with draft rules, side by side; changes nothing", "viewer",
                {"200": _json("live, draft and what moved", "Preview"),
                 "503": _json("No index to serve yet, or the search cluster is unreachable", "Error")}, body={
                    "required": True, "content": {"application/json": {"schema": _preview_body()}}})},
            "/admin/tokens": {
                "get": _admin("Token names and roles (never the tokens)", "admin", {"200": _json("Tokens", "Tokens")}),
                "post": _admin("Make a token: answered once, stored hashed", "admin", {"201": {
                    "description": "The new token", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["name", "role", "token"]}}}},
                    "409": _json("A token of that name exists: revoke it first", "Error")}, body=_TOKEN_BODY)},
            "/admin/tokens/{name}": {"delete": _admin("Revoke a token", "admin", {"204": {"description": "Revoked"}},
                                                      parameters=[_TOKEN_NAME], missing=True)},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": {"Error": _ERROR, "SearchResponse": _SEARCH_RESPONSE, "Health": _HEALTH,
                                  "EventsAccepted": _EVENTS_ANSWER, "Profile": _PROFILE, "Rule": _RULE,
                                  "Rules": _RULES, "RuleHistory": _HISTORY, "RuleImpact": _IMPACT, "Preview": _PREVIEW, "Tokens": _TOKENS,
                                  "Suggestions": _SUGGESTIONS},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description":
                                                      "python -m web tokens add NAME --role viewer|editor|admin"}}},
    }
