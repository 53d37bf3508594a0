"""The merchandiser API under /admin: rules (create, read, update, delete, history,
restore), preview, and tokens. Every request carries `Authorization: Bearer TOKEN`
(web/tokens.py): none or an unknown one is a 401, a role too low a 403 — viewers read
and preview, editors change rules, admins manage tokens. A rule is checked whole before
anything is stored (ranker/rules/model.py): a bad one is a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import Conflict, Forbidden, HTTPException, NotFound, UnsupportedMediaType

from ranker.rules.engine import RuleBook
from ranker.rules.model import RuleError, parse_rule
from ranker.rules.store import NoSuchRule, NoSuchVersion, StoredRule
from ranker.serving import ServingState
from web.params import PARAMS_BY_NAME, BadRequest, parse_search_args
from web.token_stores import open_token_store
from web.tokens import ROLES, Holder, TokenError, TokenExists

MAX_DRAFTS = 100


class Unauthorized(HTTPException):
    code = 401
    description = "send Authorization: Bearer TOKEN (python -m web tokens add NAME --role viewer|editor|admin)"


class AdminApi:
    def __init__(self, state: ServingState):
        self.state = state
        self.rules = state.rule_store
        self.tokens = open_token_store(state.backend)

    # --- who is asking -----------------------------------------------------------------

    def holder(self, role: str) -> Holder:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        holder = self.tokens.holder(token.strip())
        if holder is None:
            raise Unauthorized("that token is unknown or revoked")
        if not holder.may(role):
            raise Forbidden(f"the {holder.role} role cannot do this; it needs {role} or above")
        g.admin = holder
        return holder

    # --- rules ---------------------------------------------------------------------------

    def known(self, ids: list[str]) -> set[str]:
        return {p["id"] for p in self.state.pipeline().reader.products(ids)}

    def checked(self, raw: Any, rule_id: str | None = None) -> dict[str, Any]:
        try:
            rule = parse_rule(raw, self.known, rule_id)
        except RuleError as exc:
            raise BadRequest(exc.field, str(exc).split(": ", 1)[1]) from None
        body = rule.to_json()
        body.pop("id", None)
        return body

    @staticmethod
    def shown(stored: StoredRule) -> dict[str, Any]:
        return {"id": stored.id, **stored.body, "version": stored.version, "updated": stored.updated}

    def _stored(self, rule_id: str) -> StoredRule:
        try:
            return self.rules.get(rule_id)
        except NoSuchRule:
            raise NotFound(f"no rule {rule_id!r}") from None

    def list_rules(self) -> Response:
        self.holder("viewer")
        return jsonify({"rules": [self.shown(r) for r in self.rules.rules()]})

    def create_rule(self) -> Response:
        who = self.holder("editor")
        stored = self.rules.create(self.checked(_body()), who.name)
        response = jsonify(self.shown(stored))
        response.status_code = 201
        response.headers["Location"] = f"/admin/rules/{stored.id}"
        return response

    def get_rule(self, rule_id: str) -> Response:
        self.holder("viewer")
        return jsonify(self.shown(self._stored(rule_id)))

    def put_rule(self, rule_id: str) -> Response:
        who = self.holder("editor")
        self._stored(rule_id)
        return jsonify(self.shown(self.rules.update(rule_id, self.checked(_body(), rule_id), who.name)))

    def delete_rule(self, rule_id: str) -> Response:
        who = self.holder("editor")
        self._stored(rule_id)
        self.rules.delete(rule_id, who.name)
        return Response(status=204)

    def history(self, rule_id: str) -> Response:
        self.holder("viewer")
        try:
            versions = self.rules.history(rule_id)
        except NoSuchRule:
            raise NotFound(f"no rule {rule_id!r}") from None
        return jsonify({"id": rule_id, "versions": [
            {"version": v.version, "at": v.at, "who": v.who, "action": v.action, "before": v.before,
             "after": v.after} for v in versions]})

    def restore(self, rule_id: str) -> Response:
        who = self.holder("editor")
        body = _body()
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BadRequest("version", "must be a version number (1 or more) from the rule's history")
        try:
            stored = self.rules.restore(rule_id, version, who.name)
        except NoSuchRule:
            raise NotFound(f"no rule {rule_id!r}") from None
        except NoSuchVersion:
            raise BadRequest("version", f"rule {rule_id} has no version {version} to restore") from None
        return jsonify(self.shown(stored))

    def impact(self, rule_id: str) -> Response:
        """Searches the rule touched and what shoppers did then, against the same queries
        before it (ranker/rules/impact.py). A deleted rule keeps its history, so its impact."""
        from ranker.rules.impact import impact

        self.holder("viewer")
        try:
            created = self.rules.history(rule_id)[0].at
        except NoSuchRule:
            raise NotFound(f"no rule {rule_id!r}") from None
        return jsonify(impact(self.state.events, rule_id, created))

    # --- preview -----------------------------------------------------------------------

    def preview(self) -> Response:
        """The search as shoppers see it now (`live`) and with the draft rules (`draft`:
        a draft with the id of a stored rule replaces it), and what moved."""
        self.holder("viewer")
        body = _body()
        if not isinstance(body, dict):
            raise BadRequest("body", 'must be an object such as {"q": "sofa", "rules": [...]}')
        drafts = body.get("rules", [])
        if not isinstance(drafts, list) or len(drafts) > MAX_DRAFTS:
            raise BadRequest("rules", f"must be a list of at most {MAX_DRAFTS} draft rules")
        parsed = []
        for n, raw in enumerate(drafts):
            try:
                draft_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"draft-{n}"
                parsed.append(parse_rule(raw, self.known, draft_id))
            except RuleError as exc:
                raise BadRequest(f"rules[{n}].{exc.field}", str(exc).split(": ", 1)[1]) from None
        args = {k: v for k, v in body.items() if k != "rules"}
        for name, value in args.items():
            _check_type(name, value)
        pipeline = self.state.pipeline()
        asked = parse_search_args(MultiDict({k: str(v).lower() if isinstance(v, bool) else str(v)
                                             for k, v in args.items()}), pipeline.fusion)
        live_book = self.state.rules.book()
        replaced = {r.id for r in parsed}
        draft_book = RuleBook(tuple(r for r in live_book.rules if r.id not in replaced) + tuple(parsed))
        live = pipeline.search(asked, rules=live_book).to_json()
        draft = pipeline.search(asked, rules=draft_book).to_json()
        return jsonify({"live": live, "draft": draft, "changes": changes(live["results"], draft["results"],
                                                                         asked.offset)})

    # --- tokens ------------------------------------------------------------------------

    def list_tokens(self) -> Response:
        self.holder("admin")
        return jsonify({"tokens": [{"name": h.name, "role": h.role, "created": h.created}
                                   for h in self.tokens.holders()]})

    def add_token(self) -> Response:
        self.holder("admin")
        body = _body()
        if not isinstance(body, dict) or set(body) != {"name", "role"} or not isinstance(body["name"], str) \
                or body["role"] not in ROLES:
            raise BadRequest("body", f'must be {{"name": "...", "role": "{"|".join(ROLES)}"}}')
        try:
            token = self.tokens.add(body["name"], body["role"])
        except TokenExists as exc:
            raise Conflict(str(exc)) from None
        except TokenError as exc:
            raise BadRequest("name", str(exc)) from None
        response = jsonify({"name": body["name"], "role": body["role"], "token": token})
        response.status_code = 201
        return response

    def revoke_token(self, name: str) -> Response:
        self.holder("admin")
        if not self.tokens.revoke(name):
            raise NotFound(f"no token named {name!r}")
        return Response(status=204)


def changes(live: list[dict[str, Any]], draft: list[dict[str, Any]], offset: int = 0) -> list[dict[str, Any]]:
    """Each product of either page: moved (from, to: 1-based positions), added, removed or
    unchanged, in draft order then the removed ones."""
    before = {r["id"]: offset + n for n, r in enumerate(live, start=1)}
    after = {r["id"]: offset + n for n, r in enumerate(draft, start=1)}
    out = []
    for pid, to in after.items():
        if pid not in before:
            out.append({"id": pid, "change": "added", "to": to})
        elif before[pid] != to:
            out.append({"id": pid, "change": "moved", "from": before[pid], "to": to})
        else:
            out.append({"id": pid, "change": "unchanged", "at": to})
    out += [{"id": pid, "change": "removed", "from": at} for pid, at in before.items() if pid not in after]
    return out


_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}


def _check_type(name: str, value: Any) -> None:
    """A preview's search parameter is one JSON value of the type /search documents for it."""
    declared = PARAMS_BY_NAME[name].schema.get("type", "string") if name in PARAMS_BY_NAME else "string"
    ok = isinstance(value, _TYPES[declared]) and (declared == "boolean" or not isinstance(value, bool))
    if not ok:
        raise BadRequest(name, f"must be one {declared} value, as /search takes it")


def _body() -> Any:
    if not request.is_json:
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body", f"is not JSON: {exc}") from None


def register(app: Flask, api: AdminApi) -> None:
    app.add_url_rule("/admin/rules", "list_rules", api.list_rules, methods=["GET"])
    app.add_url_rule("/admin/rules", "create_rule", api.create_rule, methods=["POST"])
    app.add_url_rule("/admin/rules/<rule_id>", "get_rule", api.get_rule, methods=["GET"])
    app.add_url_rule("/admin/rules/<rule_id>", "put_rule", api.put_rule, methods=["PUT"])
    app.add_url_rule("/admin/rules/<rule_id>", "delete_rule", api.delete_rule, methods=["DELETE"])
    app.add_url_rule("/admin/rules/<rule_id>/history", "rule_history", api.history, methods=["GET"])
    app.add_url_rule("/admin/rules/<rule_id>/restore", "restore_rule", api.restore, methods=["POST"])
    app.add_url_rule("/admin/rules/<rule_id>/impact", "rule_impact", api.impact, methods=["GET"])
    app.add_url_rule("/admin/preview", "preview", api.preview, methods=["POST"])
    app.add_url_rule("/admin/tokens", "list_tokens", api.list_tokens, methods=["GET"])
    app.add_url_rule("/admin/tokens", "add_token", api.add_token, methods=["POST"])
    app.add_url_rule("/admin/tokens/<name>", "revoke_token", api.revoke_token, methods=["DELETE"])
