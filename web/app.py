"""The Flask app: JSON API, OpenAPI document and the search page, over one ServingState."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from indexer.settings import models_dir as default_models_dir
from indexer.store.base import BackendUnavailable
from ranker.recall import FusionConfig
from web.openapi import openapi_document
from web.params import BadRequest, parse_search_args
from web.serving import NoIndex, make_state

log = logging.getLogger(__name__)


def _error(status: int, error: str, message: str, **extra: Any):  # type: ignore[no-untyped-def]
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


def create_app(data_dir: Path, models_dir: Path | None = None, fusion: FusionConfig | None = None) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = make_state(data_dir, models_dir or default_models_dir(data_dir), fusion)
    app.extensions["shoprank"] = state

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):  # type: ignore[no-untyped-def]
        return _error(400, "bad_request", str(exc), parameter=exc.parameter)

    @app.errorhandler(NoIndex)
    def no_index(exc: NoIndex):  # type: ignore[no-untyped-def]
        return _error(503, "no_index", str(exc))

    @app.errorhandler(BackendUnavailable)
    def backend_unavailable(exc: BackendUnavailable):  # type: ignore[no-untyped-def]
        return _error(503, "backend_unavailable", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return _error(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("event=request_failed path=%s", request.path)
        return _error(500, "internal_error", "the search failed; the server log has the details")

    @app.get("/search")
    def search():  # type: ignore[no-untyped-def]
        searcher = state.searcher()
        search_request = parse_search_args(request.args, searcher.fusion)
        return jsonify(searcher.search(search_request).to_json())

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        reader = state.searcher().reader
        return jsonify({"status": "ok", "generation": reader.generation, "documents": reader.document_count})

    @app.get("/openapi.json")
    def openapi():  # type: ignore[no-untyped-def]
        return jsonify(openapi_document())

    @app.get("/")
    def page():  # type: ignore[no-untyped-def]
        args = request.args
        context: dict[str, Any] = {"q": args.get("q", ""), "response": None, "error": None, "args": args}
        if context["q"].strip():
            try:
                searcher = state.searcher()
                context["response"] = searcher.search(parse_search_args(args, searcher.fusion)).to_json()
            except (BadRequest, NoIndex, BackendUnavailable) as exc:
                context["error"] = str(exc)

        def link(**changes: Any) -> str:
            merged = {k: v for k, v in args.items(multi=True) if k not in changes and k != "offset"}
            items = list(merged.items()) + [(k, v) for k, v in changes.items() if v is not None]
            return "/?" + urlencode(items)

        return render_template("index.html", link=link, **context)

    return app
