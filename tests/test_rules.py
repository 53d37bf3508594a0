"""Merchandising rules: read with every problem named, applied in the documented order on
the whole candidate list, stored with every version, and served through the admin API
behind tokens (a real Flask app over the demo index, real SQLite files)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from indexer.store.base import Filters
from ranker.candidates import Candidate
from ranker.rules import engine
from ranker.rules.model import RuleError, parse_rule
from ranker.rules.store import NoSuchRule, NoSuchVersion

PRODUCTS = {f"P{n}": {"id": f"P{n}", "brand": "Acme" if n % 3 == 0 else "Other", "category": "Home > Sofas",
                      "price": 100.0 + n, "in_stock": n != 4, "attributes": {"color": "gray" if n % 2 else "blue"}}
            for n in range(1, 21)}


def products_of(ids):  # type: ignore[no-untyped-def]
    return {i: PRODUCTS[i] for i in ids if i in PRODUCTS}


def rule(**raw: Any):  # type: ignore[no-untyped-def]
    raw.setdefault("scope", {"query": "sofa", "match": "equals"})
    return parse_rule(raw, rule_id=raw.pop("id", None))


def ids(candidates: list[Candidate]) -> list[str]:
    return [c.id for c in candidates]


def ranked(n: int = 12) -> list[Candidate]:
    return [Candidate(f"P{i}", float(100 - i)) for i in range(1, n + 1)]


@pytest.mark.parametrize(("raw", "field"), [
    ({"kind": "shout"}, "kind"),
    ({"kind": "pin", "scope": {"query": "sofa", "match": "fuzzy"}, "products": [{"id": "P1", "position": 1}]},
     "scope.match"),
    ({"kind": "pin", "scope": {"match": "equals"}, "products": [{"id": "P1", "position": 1}]}, "scope.query"),
    ({"kind": "pin", "scope": {"query": "(a+)+$", "match": "regex"}, "products": [{"id": "P1", "position": 1}]},
     "scope.query"),
    ({"kind": "pin", "scope": {"query": "so[fa", "match": "regex"}, "products": [{"id": "P1", "position": 1}]},
     "scope.query"),
    ({"kind": "pin", "scope": {"query": "x" * 201, "match": "regex"}, "products": [{"id": "P1", "position": 1}]},
     "scope.query"),
    ({"kind": "pin", "scope": {"query": "sofa"}, "products": [{"id": "P1", "position": 0}]}, "products[0].position"),
    ({"kind": "pin", "scope": {"query": "sofa"}, "products": [{"id": "NOPE", "position": 1}]}, "products[0].id"),
    ({"kind": "hide", "scope": {"query": "sofa"}, "condition": {"field": "colour", "value": "x"}}, "condition.field"),
    ({"kind": "hide", "scope": {"query": "sofa"}, "condition": {"field": "brand", "value": "A"},
      "starts_at": "2026-12-24T00:00:00Z", "ends_at": "2026-12-23T00:00:00Z"}, "ends_at"),
    ({"kind": "boost", "scope": {"query": "sofa"}, "condition": {"field": "brand", "value": "A"}, "strength": -1},
     "strength"),
    ({"kind": "synonym", "scope": {"match": "any"}, "terms": ["couch"]}, "terms"),
    ({"kind": "redirect", "scope": {"query": "help"}, "url": "javascript:alert(1)"}, "url"),
    ({"kind": "diversify", "scope": {"match": "any"}, "field": "brand", "max": 0}, "max"),
    ({"kind": "hide", "scope": {"query": "sofa"}, "condition": {"ids": ["P1"]}, "products": []}, "products"),
])
def test_a_bad_rule_names_its_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(raw, known=lambda pins: {p for p in pins if p in PRODUCTS})
    assert caught.value.field == field


def test_a_rule_reads_back_as_it_shows() -> None:
    raw = {"kind": "boost", "scope": {"query": "Gray  Sofa", "match": "contains", "category": "Home"},
           "condition": {"field": "price", "min": 100, "max": 110}, "strength": 3, "priority": 5,
           "starts_at": "2026-12-01T00:00:00Z", "ends_at": None, "note": "winter"}
    first = parse_rule(raw)
    again = parse_rule(first.to_json())
    assert again == first and first.scope.query == "gray sofa"
    assert first.scope.applies("big gray sofa", "Home > Sofas") and not first.scope.applies("gray sofa", None)


def test_the_rules_apply_in_the_documented_order() -> None:
    rules = sorted([
        rule(kind="pin", id="pin", products=[{"id": "P9", "position": 1}, {"id": "P3", "position": 4}]),
        rule(kind="hide", id="hide", condition={"ids": ["P3", "P2"]}),
        rule(kind="bury", id="bury", condition={"field": "attributes.color", "value": "blue"}),
        rule(kind="boost", id="boost", condition={"ids": ["P7"]}, strength=2),
    ], key=engine.rule_order)
    out = engine.apply(rules, ranked(), Filters(), 10, products_of)
    order = ids(out)
    assert "P2" not in order and "P3" not in order  # hide > pin: a hidden product is not pinned back
    assert order[0] == "P9"  # the pin holds, whatever came after
    blue = [pid for pid in order if PRODUCTS[pid]["attributes"]["color"] == "blue"]
    assert order[-len(blue):] == blue  # buried below every other product
    assert order.index("P7") < order.index("P5")  # boosted past two products
    explained = {c.id: c.rules for c in out}
    assert explained["P9"] == [{"rule": "pin", "kind": "pin", "position": 1}]
    assert [r["kind"] for r in explained["P7"]] == ["boost"]


def test_two_pins_on_one_position_go_to_the_higher_priority_and_explain_says_so() -> None:
    rules = sorted([rule(kind="pin", id="low", products=[{"id": "P5", "position": 1}]),
                    rule(kind="pin", id="high", priority=3, products=[{"id": "P6", "position": 1}])],
                   key=engine.rule_order)
    out = engine.apply(rules, ranked(), Filters(), 10, products_of)
    assert ids(out)[0] == "P6"
    lost = next(c for c in out if c.id == "P5")
    assert lost.rules == [{"rule": "low", "kind": "pin", "lost_to": "high"}]


def test_pins_pull_in_a_product_recall_missed_but_not_one_the_filters_exclude() -> None:
    pin = rule(kind="pin", id="p", products=[{"id": "P18", "position": 2}, {"id": "P4", "position": 3}])
    recalled = [c for c in ranked(8) if c.id != "P4"]  # what recall finds with the in-stock filter
    out = engine.apply([pin], recalled, Filters(in_stock=True), 10, products_of)
    assert ids(out)[1] == "P18" and "P4" not in ids(out)  # P4 is out of stock: the shopper asked for in stock
    assert len(out) == 8


def test_pages_hold_each_product_once_and_pins_land_on_their_page() -> None:
    pin = rule(kind="pin", id="p", products=[{"id": "P12", "position": 7}])
    out = ids(engine.apply([pin], ranked(12), Filters(), 5, products_of))
    pages = [out[0:5], out[5:10], out[10:15]]
    assert pages[1][1] == "P12"  # position 7: the second of page 2
    flat = [pid for page in pages for pid in page]
    assert sorted(flat) == sorted(set(flat)) and len(flat) == 12


def test_diversify_keeps_at_most_n_per_brand_on_the_first_page() -> None:
    brands = {f"P{n}": {"id": f"P{n}", "brand": "Acme" if n <= 6 else f"B{n}"} for n in range(1, 13)}
    diversify = rule(kind="diversify", id="d", scope={"match": "any"}, field="brand", max=2)
    out = ids(engine.apply([diversify], ranked(12), Filters(), 5, lambda wanted: {i: brands[i] for i in wanted}))
    assert out[:5] == ["P1", "P2", "P7", "P8", "P9"]  # two of Acme, then the next brands
    assert out[5:9] == ["P3", "P4", "P5", "P6"]  # pushed to just below the first page, in order
    assert sorted(out) == sorted(ids(ranked(12)))  # never dropped


def test_query_rules_rewrite_expand_and_redirect() -> None:
    rules = sorted([rule(kind="synonym", id="s", scope={"match": "any"}, terms=["couch", "sofa"], one_way=True),
                    rule(kind="redirect", id="r", scope={"query": "help", "match": "equals"}, url="/help")],
                   key=engine.rule_order)
    synonyms = [r for r in rules if r.kind == "synonym"]
    assert engine.plan(synonyms, "grey couch").bm25_extra == ("sofa",)
    assert engine.plan(synonyms, "grey sofa").bm25_extra == ()  # one way: sofa does not bring couch
    both = rule(kind="synonym", id="t", scope={"match": "any"}, terms=["tv", "television"])
    assert engine.plan([both], "tv stand").bm25_extra == ("television",)
    assert engine.plan([both], "television stand").bm25_extra == ("tv",)
    assert engine.plan(rules, "help").redirect == "/help"
    rewrite = rule(kind="rewrite", id="w", scope={"query": "tv", "match": "equals"}, to="television")
    assert engine.plan([rewrite], "tv").text == "television"


def test_every_change_is_a_version_and_a_restore_is_one_too(make_rule_store) -> None:  # type: ignore[no-untyped-def]
    store = make_rule_store()
    before = store.stamp()
    made = store.create({"kind": "hide"}, "ann")
    store.update(made.id, {"kind": "bury"}, "bob")
    store.delete(made.id, "bob")
    assert store.rules() == [] and store.stamp() == before + 3
    restored = store.restore(made.id, 1, "ann")
    assert restored.version == 4 and restored.body == {"kind": "hide"}
    history = make_rule_store().history(made.id)  # another worker's (or node's) view
    assert [(v.version, v.who, v.action) for v in history] == [(1, "ann", "create"), (2, "bob", "update"),
                                                                (3, "bob", "delete"), (4, "ann", "restore")]
    assert history[1].before == {"kind": "hide"} and history[1].after == {"kind": "bury"}
    with pytest.raises(NoSuchVersion):
        store.restore(made.id, 3, "ann")  # version 3 is the delete
    with pytest.raises(NoSuchRule):
        store.get("r-none")
    second = store.create({"kind": "bury"}, "cy")
    assert [r.id for r in make_rule_store().rules()] == [made.id, second.id]  # oldest first


def test_tokens_are_stored_hashed_and_revoked_at_once(make_token_store) -> None:  # type: ignore[no-untyped-def]
    from web.tokens import TokenError, TokenExists

    store = make_token_store()
    token = store.add("ann", "editor")
    holder = make_token_store().holder(token)  # another worker's (or node's) view
    assert holder is not None and (holder.name, holder.role) == ("ann", "editor")
    assert holder.may("viewer") and holder.may("editor") and not holder.may("admin")
    assert store.holder(token + "x") is None
    with pytest.raises(TokenExists):
        store.add("ann", "viewer")
    with pytest.raises(TokenError):
        store.add("bad name!", "viewer")
    assert [(h.name, h.role) for h in store.holders()] == [("ann", "editor")]
    assert store.revoke("ann") and not store.revoke("ann")
    assert make_token_store().holder(token) is None


@pytest.fixture
def admin(fresh_index: Path, models_dir: Path):  # type: ignore[no-untyped-def]
    from web.app import create_app
    from web.tokens import TokenStore

    tokens = TokenStore(fresh_index / "admin.sqlite")
    keys = {role: tokens.add(f"{role}-1", role) for role in ("viewer", "editor", "admin")}
    app = create_app(fresh_index, models_dir=models_dir)
    return app.test_client(), keys


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_admin_api_needs_a_token_of_the_right_role(admin) -> None:  # type: ignore[no-untyped-def]
    client, keys = admin
    assert client.get("/admin/rules").status_code == 401
    assert "Bearer" in client.get("/admin/rules").headers["WWW-Authenticate"]
    assert client.get("/admin/rules", headers=auth("srk_nope")).status_code == 401
    assert client.get("/admin/rules", headers=auth(keys["viewer"])).status_code == 200
    body = {"kind": "hide", "scope": {"query": "sofa"}, "condition": {"field": "brand", "value": "X"}}
    assert client.post("/admin/rules", json=body, headers=auth(keys["viewer"])).status_code == 403
    assert client.get("/admin/tokens", headers=auth(keys["editor"])).status_code == 403
    made = client.post("/admin/tokens", json={"name": "late", "role": "viewer"}, headers=auth(keys["admin"]))
    assert made.status_code == 201
    assert client.get("/admin/rules", headers=auth(made.get_json()["token"])).status_code == 200
    assert client.delete("/admin/tokens/late", headers=auth(keys["admin"])).status_code == 204
    assert client.get("/admin/rules", headers=auth(made.get_json()["token"])).status_code == 401
    assert client.get("/search?q=sofa").status_code == 200  # the shopper API stays open


def test_a_pin_through_the_api_changes_search_and_a_restore_changes_it_back(admin) -> None:  # type: ignore[no-untyped-def]
    client, keys = admin
    editor = auth(keys["editor"])
    before = client.get("/search?q=sofa&k=10").get_json()["results"]
    chosen = before[-1]["id"]
    bad = client.post("/admin/rules", json={"kind": "pin", "scope": {"query": "sofa"},
                                            "products": [{"id": "SR-NOPE", "position": 1}]}, headers=editor)
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "products[0].id"
    assert client.get("/admin/rules", headers=editor).get_json()["rules"] == []  # nothing half-saved
    pin = {"kind": "pin", "scope": {"query": "sofa", "match": "equals"}, "products": [{"id": chosen, "position": 1}]}
    preview = client.post("/admin/preview", json={"q": "sofa", "k": 10, "rules": [pin]}, headers=editor).get_json()
    assert preview["draft"]["results"][0]["id"] == chosen and preview["live"]["results"][0]["id"] == before[0]["id"]
    assert {"id": chosen, "change": "moved", "from": 10, "to": 1} in preview["changes"]
    assert client.get("/search?q=sofa&k=10").get_json()["results"][0]["id"] == before[0]["id"]  # preview only
    made = client.post("/admin/rules", json=pin, headers=editor)
    assert made.status_code == 201
    rule_id = made.get_json()["id"]
    time.sleep(0.3)  # the worker re-reads the rules at most every quarter second
    found = client.get("/search?q=sofa&k=10&explain=true").get_json()["results"]
    assert found[0]["id"] == chosen and found[0]["explain"]["rules"] == [
        {"rule": rule_id, "kind": "pin", "position": 1}]
    moved = {**pin, "products": [{"id": chosen, "position": 3}]}
    assert client.put(f"/admin/rules/{rule_id}", json=moved, headers=editor).status_code == 200
    time.sleep(0.3)
    assert client.get("/search?q=sofa&k=10").get_json()["results"][2]["id"] == chosen
    history = client.get(f"/admin/rules/{rule_id}/history", headers=auth(keys["viewer"])).get_json()["versions"]
    assert [(v["version"], v["who"], v["action"]) for v in history] == [(1, "editor-1", "create"),
                                                                         (2, "editor-1", "update")]
    restored = client.post(f"/admin/rules/{rule_id}/restore", json={"version": 1}, headers=editor)
    assert restored.status_code == 200 and restored.get_json()["version"] == 3
    time.sleep(0.3)
    assert client.get("/search?q=sofa&k=10").get_json()["results"][0]["id"] == chosen
    assert client.delete(f"/admin/rules/{rule_id}", headers=editor).status_code == 204
    time.sleep(0.3)
    assert [r["id"] for r in client.get("/search?q=sofa&k=10").get_json()["results"]] == [r["id"] for r in before]
    assert client.get(f"/admin/rules/{rule_id}", headers=editor).status_code == 404


def test_a_redirect_rule_answers_with_its_url_and_a_hide_rule_hides(admin) -> None:  # type: ignore[no-untyped-def]
    client, keys = admin
    editor = auth(keys["editor"])
    searched = client.get("/search?q=sofa&k=20").get_json()
    before = searched["results"]
    brand = before[0]["brand"]
    brand_count = next(b["count"] for b in searched["facets"]["brand"] if b["value"] == brand)
    for body in ({"kind": "redirect", "scope": {"query": "returns"}, "url": "/pages/returns"},
                 {"kind": "hide", "scope": {"query": "sofa"}, "condition": {"field": "brand", "value": brand}}):
        assert client.post("/admin/rules", json=body, headers=editor).status_code == 201
    time.sleep(0.3)
    assert client.get("/search?q=returns").get_json()["redirect"] == "/pages/returns"
    hidden = client.get("/search?q=sofa&k=20").get_json()
    after = hidden["results"]
    assert after and all(r.get("brand") != brand for r in after)
    assert hidden["total"] == searched["total"] - brand_count  # inside recall: the total leaves them out
    assert brand not in {b["value"] for b in hidden["facets"]["brand"]}
    assert "redirect" not in client.get("/search?q=sofa").get_json()
    page = client.get("/?q=returns")
    assert page.status_code == 302 and page.headers["Location"] == "/pages/returns"  # the page follows it
    html = client.get("/?q=sofa").get_data(as_text=True)
    assert 'class="thumb"' in html and "this.src='data:image/svg+xml" in html  # a placeholder when an image fails


def test_a_rule_change_reaches_every_worker_within_a_second(fresh_index: Path, make_server) -> None:  # type: ignore[no-untyped-def]
    """Two server processes: a rule posted to one shows in searches answered by both."""
    import urllib.request

    from web.tokens import TokenStore

    token = TokenStore(fresh_index / "admin.sqlite").add("ops", "editor")
    server = make_server(fresh_index, workers=2)
    _, before = server.get("/search?q=lamp&k=5")
    chosen = before["results"][-1]["id"]
    request = urllib.request.Request(server.base + "/admin/rules", method="POST", data=json.dumps({
        "kind": "pin", "scope": {"query": "lamp"}, "products": [{"id": chosen, "position": 1}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
    posted = time.monotonic()
    seen = 0
    while seen < 20 and time.monotonic() - posted < 1.0:
        status, found = server.get("/search?q=lamp&k=5")
        seen = seen + 1 if status == 200 and found["results"][0]["id"] == chosen else 0
    assert seen >= 20, "twenty searches in a row (both workers) within a second should show the pin"


def test_a_rules_impact_comes_from_the_event_log(admin) -> None:  # type: ignore[no-untyped-def]
    """Searches before the rule are the baseline; searches it touched record which shown
    products it acted on, and the clicks and purchases on them are counted."""
    client, keys = admin
    editor = auth(keys["editor"])
    for n in range(3):  # before the rule: nobody clicks the product that will be pinned
        found = client.get(f"/search?q=sofa&k=10&user_id=before-{n}").get_json()
        assert client.post("/events", json={"action_name": "click", "user_id": f"before-{n}", "position": 1,
                                            "object_id": found["results"][0]["id"],
                                            "query_id": found["query_id"]}).status_code == 200
    chosen = found["results"][-1]["id"]
    time.sleep(0.01)
    made = client.post("/admin/rules", json={"kind": "pin", "scope": {"query": "sofa"},
                                             "products": [{"id": chosen, "position": 1}]}, headers=editor).get_json()
    time.sleep(0.3)
    for n in range(4):
        found = client.get(f"/search?q=Sofa&k=10&user_id=after-{n}").get_json()
        assert found["results"][0]["id"] == chosen
        for action in ("click", "purchase")[: 1 + n % 2]:
            client.post("/events", json={"action_name": action, "user_id": f"after-{n}", "position": 1,
                                         "object_id": chosen, "query_id": found["query_id"]})
    client.get("/search?q=lamp&k=10&user_id=elsewhere")  # another query: not the rule's
    report = client.get(f"/admin/rules/{made['id']}/impact", headers=auth(keys["viewer"])).get_json()
    assert report["queries"] == ["sofa"]
    assert report["touched"]["searches"] == 4 and report["touched"]["on_its_products"] == {
        "click": 4, "add_to_cart": 0, "purchase": 2}
    assert report["baseline"]["of"] == "the same queries before the rule" and report["baseline"]["searches"] == 3
    assert report["baseline"]["per_search"]["click"] == 1.0 and report["baseline"]["on_its_products"]["click"] == 0
    assert client.get("/admin/rules/r-none/impact", headers=editor).status_code == 404


@pytest.mark.parametrize(("price", "currency", "shown"), [
    (1299.0, "USD", "$1,299.00"), (5.5, "EUR", "€5.50"), (120000, "JPY", "¥120,000"), (99.0, "CHF", "99.00 CHF"),
    (10.0, None, "10.00")])
def test_prices_show_their_currency_and_thousands(price: float, currency: str | None, shown: str) -> None:
    from web.app import money

    assert money(price, currency) == shown


def test_the_console_logs_in_creates_previews_publishes_and_restores(admin) -> None:  # type: ignore[no-untyped-def]
    """The merchandiser console at /admin through the app (its session cookie is Secure, so
    the client speaks https): log in with a token, create a pin, preview an edit side by
    side, publish it, restore the first version; CSRF and revocation hold."""
    import re

    client, keys = admin
    client = client.application.test_client()  # a fresh cookie jar
    base = "https://localhost"

    def csrf(html: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]

    assert client.get("/admin", base_url=base).status_code == 302  # not logged in: to the login page
    login = client.get("/admin/login", base_url=base).get_data(as_text=True)
    assert client.post("/admin/login", base_url=base, data={"token": keys["editor"]}).status_code == 400  # no CSRF
    wrong = client.post("/admin/login", base_url=base, data={"token": "srk_x", "csrf": csrf(login)})
    assert "unknown or revoked" in wrong.get_data(as_text=True)
    done = client.post("/admin/login", base_url=base, data={"token": keys["editor"], "csrf": csrf(login)})
    assert done.status_code == 302
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    page = client.get("/admin", base_url=base).get_data(as_text=True)
    assert "editor-1 (editor)" in page and "No rules" in page
    before = client.get("/search?q=sofa&k=10").get_json()["results"]
    pin = {"kind": "pin", "scope": {"query": "sofa", "match": "equals"},
           "products": [{"id": before[-1]["id"], "position": 1}]}
    bad = client.post("/admin/console/rules", base_url=base, data={"csrf": csrf(page), "rule": '{"kind": "pin"}'})
    assert bad.status_code == 200 and "scope" in bad.get_data(as_text=True)  # the API's own check, shown
    made = client.post("/admin/console/rules", base_url=base, data={"csrf": csrf(page), "rule": json.dumps(pin)})
    assert made.status_code == 302
    rule_url = made.headers["Location"].replace("http://localhost", "").replace(base, "")
    rule_id = rule_url.rsplit("/", 1)[-1]
    edit = client.get(rule_url, base_url=base).get_data(as_text=True)
    assert "Restore version 1" in edit and "Searches it touched" in edit
    moved = {**pin, "products": [{"id": before[-2]["id"], "position": 2}]}
    preview = client.post(f"{rule_url}/preview", base_url=base,
                          data={"csrf": csrf(edit), "rule": json.dumps(moved), "q": "sofa"}).get_data(as_text=True)
    assert 'id="preview"' in preview and "(from 9)" in preview  # side by side, the move marked
    time.sleep(0.3)
    assert client.get("/search?q=sofa&k=10").get_json()["results"][0]["id"] == before[-1]["id"]  # not published
    assert client.post(rule_url, base_url=base, data={"csrf": csrf(edit), "rule": json.dumps(moved)}).status_code == 302
    time.sleep(0.3)
    assert client.get("/search?q=sofa&k=10").get_json()["results"][1]["id"] == before[-2]["id"]
    again = client.get(rule_url, base_url=base).get_data(as_text=True)
    assert client.post(f"{rule_url}/restore", base_url=base,
                       data={"csrf": csrf(again), "version": "1"}).status_code == 302
    time.sleep(0.3)
    assert client.get("/search?q=sofa&k=10").get_json()["results"][0]["id"] == before[-1]["id"]
    history = client.get(f"/admin/rules/{rule_id}/history", headers=auth(keys["viewer"])).get_json()["versions"]
    assert [v["action"] for v in history] == ["create", "update", "restore"]
    assert client.delete("/admin/tokens/editor-1", headers=auth(keys["admin"])).status_code == 204
    assert client.get("/admin", base_url=base).status_code == 302  # a revoked token is logged out at once
