"""The Flask app: JSON API, OpenAPI document and the search page, over one ServingState.

Every error a client can get is a JSON body `{"error", "message"[, "parameter"]}` with no
stack trace and no server path in it; the log has the details.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from indexer import settings
from indexer.backends import open_backend
from indexer.store.base import BackendUnavailable
from ranker.fusion import FusionConfig
from ranker.serving import NoIndex, ServingState
from web.admin_api import AdminApi
from web.admin_api import register as register_admin
from web.console import register as register_console
from web.events_api import EventsApi, register
from web.openapi import openapi_document
from web.page_links import PageLinks
from web.params import MAX_OFFSET, BadRequest, parse_search_args, parse_suggest_args

log = logging.getLogger(__name__)


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "INR": "₹"}
# A grey square with a picture frame: shown where a product has no image or its image fails.
PLACEHOLDER_IMAGE = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 72 72'%3E"
                     "%3Crect width='72' height='72' fill='%23eee'/%3E%3Cpath d='M18 50l12-14 9 10 7-8 10 12z' "
                     "fill='%23bbb'/%3E%3C/svg%3E")


def money(price: float, currency: str | None) -> str:
    """`$1,299.00`; a currency without a known symbol keeps its code: `1,299.00 CHF`."""
    symbol = CURRENCY_SYMBOLS.get((currency or "").upper())
    amount = f"{price:,.0f}" if (currency or "").upper() == "JPY" else f"{price:,.2f}"
    if symbol:
        return f"{symbol}{amount}"
    return f"{amount} {currency}".strip() if currency else amount


def error_response(status: int, error: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


class ShopRankFlask(Flask):
    def make_default_options_response(self) -> Response:
        """OPTIONS: 204 with the path's methods in `Allow`, no body (Flask's own default is a
        200 with an empty HTML body)."""
        allowed = super().make_default_options_response().headers.get("Allow", "")
        response = Response(status=204, headers={"Allow": allowed})
        del response.headers["Content-Type"]
        return response


def create_app(data_dir: Path, fusion: FusionConfig | None = None, models_dir: Path | None = None) -> Flask:
    app = ShopRankFlask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024  # a full batch of events with room to spare; more is a 413
    state = ServingState(open_backend(data_dir), fusion, models_dir=models_dir or settings.models_dir(data_dir))
    app.extensions["shoprank"] = state
    events = EventsApi(state)
    register(app, events)
    admin = AdminApi(state)
    register_admin(app, admin)
    register_console(app, admin, data_dir)

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest) -> Response:
        return error_response(400, "bad_request", str(exc), parameter=exc.parameter)

    @app.errorhandler(NoIndex)
    def no_index(exc: NoIndex) -> Response:
        log.error("event=no_index detail=%r", str(exc))
        return error_response(503, "no_index", exc.public)

    @app.errorhandler(BackendUnavailable)
    def backend_unavailable(exc: BackendUnavailable) -> Response:
        return error_response(503, "backend_unavailable", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = error_response(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        if exc.code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="shoprank-admin"'
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.exception("event=request_failed path=%s", request.path)
        return error_response(500, "internal_error", "the search failed; the server log has the details")

    @app.route("/search", methods=["GET"])
    def search() -> Response:
        pipeline = state.pipeline()
        asked = parse_search_args(request.args, pipeline.fusion)
        response = pipeline.search(asked)
        events.record(asked, response)
        return jsonify(response.to_json())

    @app.route("/suggest", methods=["GET"])
    def suggest() -> Response:
        typed, k = parse_suggest_args(request.args)
        suggester = state.pipeline().suggester
        found = suggester.complete(typed, k) if suggester is not None else []
        return jsonify({"query": typed, "suggestions": [s.to_json() for s in found]})

    @app.route("/healthz", methods=["GET"])
    def healthz() -> Response:
        pipeline = state.pipeline()
        reader, ranker = pipeline.reader, pipeline.ranker
        return jsonify({"status": "ok", "generation": reader.generation, "documents": reader.document_count,
                        "ranker": ranker.version if ranker else None, "personal": bool(ranker and ranker.personal)})

    @app.route("/openapi.json", methods=["GET"])
    def openapi() -> Response:
        return jsonify(openapi_document())

    app.jinja_env.filters["money"] = money
    app.jinja_env.globals["placeholder"] = PLACEHOLDER_IMAGE

    @app.route("/", methods=["GET"])
    def page() -> str | Response:
        args = request.args
        context: dict[str, Any] = {"q": args.get("q", ""), "response": None, "error": None, "args": args}
        if context["q"].strip():
            try:
                pipeline = state.pipeline()
                context["response"] = pipeline.search(parse_search_args(args, pipeline.fusion)).to_json()
                if context["response"].get("redirect"):  # a merchandiser's redirect rule: the page follows it
                    return redirect(context["response"]["redirect"], code=302)
            except (BadRequest, BackendUnavailable) as exc:
                context["error"] = str(exc)
            except NoIndex as exc:
                context["error"] = exc.public
        return render_template("index.html", links=PageLinks(args), max_offset=MAX_OFFSET, **context)

    return app
