"""Both pages in a real browser: Debian's headless Chromium driven by Playwright against a
real server. The shopper page: type-ahead, search, filter by a brand and an attribute
facet, sort, page, did you mean. The console: log in,
create a pin, preview an edit, publish it, see the shopper page change, restore the first
version and see it change back. Every page visited is saved as a screenshot under
.cache/browser-screenshots/ (not committed). Skips when Chromium or Playwright is absent
(`.ci/run` installs both)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
SHOTS = ROOT / ".cache" / "browser-screenshots"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromium") is None,
                                reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture
def browser_page(fresh_index: Path, make_server) -> Any:  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    from web.tokens import TokenStore

    token = TokenStore(fresh_index / "admin.sqlite").add("browser-editor", "editor")
    # The test server speaks plain HTTP, so the console's cookie goes without `Secure` here
    # (tests/test_rules.py checks the flags over https).
    server = make_server(fresh_index, workers=1, env={"SHOPRANK_ADMIN_COOKIE_SECURE": "false"})
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            page = browser.new_page()
            visited: list[str] = []

            def shot(name: str) -> None:
                visited.append(name)
                page.screenshot(path=str(SHOTS / f"{len(visited):02d}-{name}.png"), full_page=True)

            yield page, server.base, token, shot
        finally:
            browser.close()


def titles(page: Any) -> list[str]:
    return page.locator(".result h2").all_inner_texts()


def test_the_shopper_page_searches_filters_and_pages(browser_page: Any) -> None:
    page, base, _token, shot = browser_page
    page.goto(base + "/")
    shot("home")
    page.fill("input[name=q]", "sofa")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(".result")
    shot("search")
    assert len(titles(page)) == 10 and "matching products" in page.inner_text(".meta")
    total = int(re.sub(r"\D", "", page.inner_text(".meta").split("matching")[0]))
    brand_link = page.locator("aside h3:text('brand') + a").first
    brand = brand_link.inner_text().rsplit("(", 1)[0].strip()
    brand_link.click()
    page.wait_for_selector(".result")
    shot("facet")
    subs = page.locator(".result .sub").all_inner_texts()
    assert subs and all(s.startswith(brand) for s in subs)
    filtered = int(re.sub(r"\D", "", page.inner_text(".meta").split("matching")[0]))
    assert filtered < total
    page.goto(base + "/?q=sofa")
    first = titles(page)
    page.click("text=next →")
    page.wait_for_selector(".result")
    shot("page-2")
    assert titles(page) and not set(titles(page)) & set(first)
    assert page.inner_text(".pager strong.current") == "2"
    page.click(".pager a.number:text('3')")
    page.wait_for_selector(".result")
    shot("page-3")
    assert page.inner_text(".pager strong.current") == "3" and not set(titles(page)) & set(first)
    assert page.locator(".result img.thumb").count() == len(titles(page))


def prices(page: Any) -> list[float]:
    return [float(re.sub(r"[^0-9.]", "", p)) for p in page.locator(".result .price").all_inner_texts()]


def test_the_shopper_page_suggests_sorts_and_filters_by_attribute(browser_page: Any) -> None:
    page, base, _token, shot = browser_page
    page.goto(base + "/")
    page.locator("input[name=q]").press_sequentially("sof", delay=30)
    page.wait_for_function("document.querySelectorAll('#suggestions option').length > 0")
    options = page.eval_on_selector_all("#suggestions option", "els => els.map(e => e.value)")
    assert options and all(o.startswith("sof") for o in options)
    shot("type-ahead")
    page.goto(base + "/?q=sofa")
    relevance = titles(page)
    page.click(".sort a[data-sort=price_asc]")
    page.wait_for_selector(".sort strong:text('price: low to high')")
    shot("sorted")
    ascending = prices(page)
    assert ascending == sorted(ascending) and titles(page) != relevance
    page.click("text=next →")
    page.wait_for_selector(".result")
    assert min(prices(page)) >= max(ascending)  # page 2 continues the sorted list
    page.click(".sort a[data-sort=price_desc]")
    page.wait_for_selector(".sort strong:text('price: high to low')")
    assert page.inner_text(".pager strong.current") == "1"  # a new order starts at page one
    assert prices(page) == sorted(prices(page), reverse=True)
    color = page.locator("aside h3:text('color') + a").first
    value = color.inner_text().rsplit("(", 1)[0].strip()
    color.click()
    page.wait_for_selector(".result")
    shot("attribute-facet")
    assert f"attr.color: {value}" in page.inner_text("aside .active")
    assert prices(page) == sorted(prices(page), reverse=True)  # the sort stays with the filter
    page.goto(base + "/?q=sfa")
    shot("did-you-mean")
    assert "No results for sfa" in page.inner_text(".no-results")  # nothing close enough: said, not padded
    page.click(".did-you-mean a")
    page.wait_for_selector(".result")
    assert page.locator("input[name=q]").input_value() == "sofa" and titles(page)
    page.goto(base + "/?q=gray+velvet+sofa")
    chip = page.locator(".understood a[data-field='attr.color']")
    assert chip.inner_text() == "Color: gray"  # offered, not applied
    assert page.locator("aside .active").count() == 0  # no filter yet
    chip.click()
    page.wait_for_selector(".result")
    shot("understood")
    assert "attr.color: gray" in page.inner_text("aside .active")
    assert page.locator(".understood a[data-field='attr.color']").count() == 0  # applied now: no longer offered


def test_the_console_pins_previews_publishes_and_restores(browser_page: Any) -> None:
    page, base, token, shot = browser_page
    page.goto(base + "/?q=lamp&k=10")
    before = titles(page)
    ids = json.loads(page.evaluate("fetch('/search?q=lamp&k=10').then(r => r.text())"))["results"]
    page.goto(base + "/admin")
    shot("login")
    page.fill("input[name=token]", token)
    page.click("button:text('Log in')")
    page.wait_for_selector("text=New rule")
    shot("rules")
    rule = {"kind": "pin", "scope": {"query": "lamp", "match": "equals"},
            "products": [{"id": ids[-1]["id"], "position": 1}]}
    # the form's fields write the rule's JSON
    page.select_option("select[name=b-kind]", "pin")
    page.select_option("select[name=b-match]", "equals")
    page.fill("input[name=b-query]", "lamp")
    page.fill("textarea[name=b-products]", f"{ids[-1]['id']} 1")
    page.fill("input[name=b-note]", "from the browser")
    written = json.loads(page.input_value("textarea[name=rule]"))
    assert {k: written[k] for k in ("kind", "scope", "products")} == rule and written["note"] == "from the browser"
    assert page.is_hidden("input[name=b-strength]")  # only a pin's own fields show
    page.click("button:text('Publish')")
    page.wait_for_selector("#history")
    shot("rule")
    assert page.input_value("input[name=b-query]") == "lamp"  # a stored rule fills the form in
    rule_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.input_value("textarea[name=b-products]") == f"{ids[-1]['id']} 1"
    time.sleep(0.4)
    page.goto(base + "/?q=lamp&k=10")
    shot("pinned")
    assert titles(page)[0] == before[-1]  # the shopper page changed
    page.go_back()
    page.wait_for_selector("#history")
    moved = {**rule, "products": [{"id": ids[-2]["id"], "position": 1}]}
    page.fill("textarea[name=rule]", json.dumps(moved))
    page.fill("input[name=q]", "lamp")
    page.click("button:text('Preview')")
    page.wait_for_selector("#preview")
    shot("preview")
    assert before[-2] in page.inner_text("#preview li.moved")
    draft_first = page.locator("#preview > div").nth(1).locator("li").first
    assert f"pin {rule_id}" in draft_first.inner_text()  # explain: the rule that put it there
    page.click("button:text('Publish')")
    page.wait_for_selector("#history")
    time.sleep(0.4)
    page.goto(base + "/?q=lamp&k=10")
    assert titles(page)[0] == before[-2]
    page.go_back()
    page.wait_for_selector("#history")
    page.click("text=Restore version 1")
    page.wait_for_selector("#history")
    shot("restored")
    time.sleep(0.4)
    page.goto(base + "/?q=lamp&k=10")
    shot("back")
    assert titles(page)[0] == before[-1]  # version 1's pin again
