"""The merchandiser console at /admin: server-rendered pages over the same rule store,
checks and roles as the admin API (web/admin_api.py).

Logging in takes a token (web/tokens.py) and keeps, in Flask's signed session cookie
(HttpOnly, SameSite=Strict, Secure unless SHOPRANK_ADMIN_COOKIE_SECURE=false), the token's
hash: every page checks it against the store again, so a revoked token logs out at once.
Every form carries a CSRF token kept in the session and compared in constant time. The
signing key is $SHOPRANK_SECRET_KEY (the same on every web node) or, for one machine, a
key made once in DATA/admin.secret.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

from ranker.rules.engine import RuleBook
from ranker.rules.model import RuleError, parse_rule
from ranker.rules.store import NoSuchRule, NoSuchVersion
from web.admin_api import AdminApi, changes
from web.params import BadRequest, parse_search_args
from web.tokens import Holder, token_hash

NEW_RULE = {"kind": "pin", "scope": {"query": "sofa", "match": "equals"},
            "products": [{"id": "SR-000001", "position": 1}], "priority": 0, "enabled": True, "note": ""}


def secret_key(data_dir: Path) -> str:
    from indexer import settings

    configured = settings.secret_key()
    if configured:
        return configured
    path = data_dir / "admin.secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:  # made once, by whichever worker gets here first; the others read it
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(handle, "w") as out:
            out.write(secrets.token_urlsafe(48))
            out.flush()
            os.fsync(out.fileno())
    for _ in range(50):  # another worker may be between creating and writing it
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it and start again")


class Console:
    def __init__(self, api: AdminApi):
        self.api = api

    # --- session --------------------------------------------------------------------

    def holder(self) -> Holder | None:
        """Who is logged in, looked up again each time: revoking a token logs it out."""
        hashed = session.get("token_hash")
        return self.api.tokens.holder_by_hash(hashed) if isinstance(hashed, str) and hashed else None

    def require(self, role: str) -> Holder | Response:
        holder = self.holder()
        if holder is None:
            session.clear()
            return redirect(url_for("console_login"))
        if not holder.may(role):
            abort(403, description=f"the {holder.role} role cannot do this; it needs {role} or above")
        return holder

    @staticmethod
    def csrf() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return str(session["csrf"])

    @staticmethod
    def check_csrf() -> None:
        sent = request.form.get("csrf", "")
        if not sent or not hmac.compare_digest(sent, str(session.get("csrf", ""))):
            abort(400, description="the form is stale or not from this console (CSRF check): reload and try again")

    def page(self, template: str, **context: Any) -> str:
        return render_template(template, csrf=self.csrf(), holder=self.holder(), **context)

    # --- views -------------------------------------------------------------------------

    def login(self) -> str | Response:
        if request.method == "POST":
            self.check_csrf()
            token = request.form.get("token", "").strip()
            holder = self.api.tokens.holder(token) if token else None
            if holder is None:
                return self.page("admin_login.html", error="that token is unknown or revoked")
            session.clear()
            session.update(token_hash=token_hash(token), csrf=secrets.token_urlsafe(32))
            return redirect(url_for("console_rules"))
        return self.page("admin_login.html", error=None)

    def logout(self) -> Response:
        self.check_csrf()
        session.clear()
        return redirect(url_for("console_login"))

    def rules(self) -> str | Response:
        who = self.require("viewer")
        if isinstance(who, Response):
            return who
        wanted = request.args.get("find", "").strip().lower()
        listed = [self.api.shown(r) for r in self.api.rules.rules()]
        if wanted:
            listed = [r for r in listed if wanted in json.dumps(r).lower()]
        return self.page("admin_rules.html", rules=listed, find=wanted, draft=json.dumps(NEW_RULE, indent=2),
                         error=None)

    def save(self, rule_id: str | None = None) -> str | Response:
        who = self.require("editor")
        if isinstance(who, Response):
            return who
        self.check_csrf()
        text = request.form.get("rule", "")
        try:
            body = self.api.checked(json.loads(text), rule_id)
        except (ValueError, BadRequest) as exc:
            message = str(exc) if isinstance(exc, BadRequest) else f"not JSON: {exc}"
            if rule_id is None:
                listed = [self.api.shown(r) for r in self.api.rules.rules()]
                return self.page("admin_rules.html", rules=listed, find="", draft=text, error=message)
            return self.edit_page(rule_id, text=text, error=message)
        stored = (self.api.rules.create(body, who.name) if rule_id is None
                  else self.api.rules.update(rule_id, body, who.name))
        return redirect(url_for("console_rule", rule_id=stored.id))

    def edit_page(self, rule_id: str, text: str | None = None, error: str | None = None,
                  preview: dict[str, Any] | None = None) -> str:
        from ranker.rules.impact import impact

        try:
            stored = self.api.rules.get(rule_id)
            deleted = False
        except NoSuchRule:
            stored, deleted = None, True
        try:
            history = self.api.rules.history(rule_id)
        except NoSuchRule:
            abort(404, description=f"no rule {rule_id!r}")
        shown = text if text is not None else json.dumps(stored.body if stored else history[-1].before, indent=2)
        return self.page("admin_rule.html", rule_id=rule_id, text=shown, error=error, history=history,
                         deleted=deleted, impact=impact(self.api.state.events, rule_id, history[0].at),
                         preview=preview, when=lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)))

    def rule(self, rule_id: str) -> str | Response:
        who = self.require("viewer")
        return who if isinstance(who, Response) else self.edit_page(rule_id)

    def delete(self, rule_id: str) -> Response:
        who = self.require("editor")
        if isinstance(who, Response):
            return who
        self.check_csrf()
        try:
            self.api.rules.delete(rule_id, who.name)
        except NoSuchRule:
            abort(404, description=f"no rule {rule_id!r}")
        return redirect(url_for("console_rule", rule_id=rule_id))

    def restore(self, rule_id: str) -> Response | str:
        who = self.require("editor")
        if isinstance(who, Response):
            return who
        self.check_csrf()
        try:
            self.api.rules.restore(rule_id, int(request.form.get("version", "0")), who.name)
        except (NoSuchRule, NoSuchVersion, ValueError):
            return self.edit_page(rule_id, error="that version cannot be restored")
        return redirect(url_for("console_rule", rule_id=rule_id))

    def preview(self, rule_id: str) -> str | Response:
        """The rule as edited (not saved) against the rules in force, side by side, each
        result with the rules that touched it (explain)."""
        who = self.require("viewer")
        if isinstance(who, Response):
            return who
        self.check_csrf()
        text, query = request.form.get("rule", ""), request.form.get("q", "").strip()
        try:
            draft = parse_rule(json.loads(text), self.api.known, rule_id)
            pipeline = self.api.state.pipeline()
            asked = parse_search_args({"q": query or "-", "k": "10", "explain": "true"}, pipeline.fusion)
        except (ValueError, RuleError, BadRequest) as exc:
            return self.edit_page(rule_id, text=text, error=str(exc))
        live_book = self.api.state.rules.book()
        draft_book = RuleBook((*(r for r in live_book.rules if r.id != rule_id), draft))
        live = pipeline.search(asked, rules=live_book).to_json()
        drafted = pipeline.search(asked, rules=draft_book).to_json()
        return self.edit_page(rule_id, text=text, preview={
            "q": query, "live": live["results"], "draft": drafted["results"],
            "changes": {c["id"]: c for c in changes(live["results"], drafted["results"])}})


def register(app: Flask, api: AdminApi, data_dir: Path) -> None:
    from indexer import settings

    app.secret_key = secret_key(data_dir)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=settings.admin_cookie_secure(), SESSION_COOKIE_NAME="shoprank_admin")
    console = Console(api)
    app.add_url_rule("/admin", "console_rules", console.rules, methods=["GET"])
    app.add_url_rule("/admin/login", "console_login", console.login, methods=["GET", "POST"])
    app.add_url_rule("/admin/logout", "console_logout", console.logout, methods=["POST"])
    app.add_url_rule("/admin/console/rules", "console_create", console.save, methods=["POST"])
    app.add_url_rule("/admin/console/rules/<rule_id>", "console_rule", console.rule, methods=["GET"])
    app.add_url_rule("/admin/console/rules/<rule_id>", "console_save", console.save, methods=["POST"])
    app.add_url_rule("/admin/console/rules/<rule_id>/delete", "console_delete", console.delete, methods=["POST"])
    app.add_url_rule("/admin/console/rules/<rule_id>/restore", "console_restore", console.restore, methods=["POST"])
    app.add_url_rule("/admin/console/rules/<rule_id>/preview", "console_preview", console.preview, methods=["POST"])
