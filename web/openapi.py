"""The OpenAPI 3.1 document of the JSON API, built from the same parameter table that
validates requests (web/params.py)."""

from __future__ import annotations

from typing import Any

from web.params import PARAMS

_ERROR = {"type": "object", "required": ["error", "message"], "properties": {
    "error": {"type": "string"}, "message": {"type": "string"}, "parameter": {"type": "string"}}}
_BUCKET = {"type": "object", "required": ["value", "count"], "properties": {
    "value": {"type": "string"}, "count": {"type": "integer"},
    "from": {"type": ["number", "null"]}, "to": {"type": ["number", "null"]}}}
_RESULT = {"type": "object", "required": ["id", "title", "score"], "properties": {
    "id": {"type": "string"}, "title": {"type": "string"}, "brand": {"type": "string"},
    "category": {"type": "string"}, "price": {"type": "number"}, "currency": {"type": "string"},
    "in_stock": {"type": "boolean"}, "rating": {"type": "number"}, "review_count": {"type": "integer"},
    "image_url": {"type": "string"}, "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    "score": {"type": "number"}, "explain": {"type": "object"}}}


def openapi_document() -> dict[str, Any]:
    parameters = [
        {"name": p.name, "in": "query", "required": p.required, "description": p.description,
         "schema": {"type": "array", "items": p.schema} if p.repeatable else p.schema,
         **({"explode": True} if p.repeatable else {})}
        for p in PARAMS
    ]
    parameters.append({"name": "attr.{name}", "in": "query", "required": False,
                       "description": "Attribute filter, e.g. `attr.color=blue`; repeat for any of several values.",
                       "schema": {"type": "string"}})
    error = {"description": "Bad request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    unavailable = {"description": "No index loaded yet",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ShopRank search API", "version": "1.0.0"},
        "paths": {
            "/search": {"get": {
                "summary": "Hybrid product search with filters and facets",
                "parameters": parameters,
                "responses": {
                    "200": {"description": "Results", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchResponse"}}}},
                    "400": error, "503": unavailable}}},
            "/healthz": {"get": {"summary": "Serving generation and document count", "responses": {
                "200": {"description": "Serving", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
                "503": unavailable}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {"schemas": {
            "Error": _ERROR,
            "SearchResponse": {"type": "object", "required": ["query", "total", "results", "facets", "took_ms"], "properties": {
                "query": {"type": "string"},
                "corrected_query": {"type": ["string", "null"],
                                    "description": "The words searched, when correction changed the query."},
                "total": {"type": "integer"},
                "results": {"type": "array", "items": _RESULT},
                "facets": {"type": "object", "additionalProperties": {"type": "array", "items": _BUCKET}},
                "took_ms": {"type": "number"}, "generation": {"type": "string"}}},
            "Health": {"type": "object", "required": ["status", "generation", "documents"], "properties": {
                "status": {"type": "string"}, "generation": {"type": "string"}, "documents": {"type": "integer"}}},
        }},
    }
