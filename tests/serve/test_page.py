"""The web page in headless Chromium: pick a user, read reasons, similar items, a new user's
history built by searching titles, the model card; no console errors."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright import sync_api

from tests.serve.conftest import Server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def test_page_flows(server: Server, tmp_path: Path) -> None:
    problems: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + "/")

        # the model card of the first model
        page.wait_for_selector("#params tr")
        assert page.locator("#model option").count() == 3
        assert "ALS" in page.locator("#card").inner_text()
        assert page.locator("#params tr", has_text="n_factors").count() == 1

        # a known user: top-k with titles, scores and reasons
        page.fill("#user", "7")
        page.fill("#k", "5")
        page.click("#go-user")
        page.wait_for_selector("#recs li[data-item] .reason")
        assert page.locator("#recs > li[data-item]").count() == 5
        first = page.locator("#recs > li[data-item]").first
        assert "(" in first.locator(".item-title").inner_text()  # a title such as "... (1995)"
        assert page.locator("#error").is_hidden()

        # click an item: its similar items
        title = first.locator(".item-title").inner_text()
        first.locator(".item-title").click()
        page.wait_for_selector("#similar li[data-item]")
        assert title in page.locator("#similar-title").inner_text()

        # build a new user's history by searching titles and from the lists
        page.fill("#search", "toy story")
        page.wait_for_selector("#hits li button")
        assert "Toy Story" in page.locator("#hits").inner_text()
        page.locator("#hits li button").first.click()
        page.locator("#similar li[data-item] button.add").first.click()
        assert page.locator("#history li").count() == 2
        page.click("#go-history")
        page.wait_for_function(
            "document.querySelector('#results-title').textContent.includes('new user')")
        page.wait_for_selector("#recs li[data-item]")
        assert page.locator("#recs > li[data-item]").count() == 5

        # another model: the card follows
        page.select_option("#model", "pop")
        page.wait_for_function("document.querySelector('#card').textContent.includes('Popularity')")
        page.click("#go-user")
        page.wait_for_selector("#recs li[data-item]")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()

        shot = tmp_path / "serve-page.png"
        page.select_option("#model", "als")
        page.wait_for_function("document.querySelector('#card').textContent.includes('ALS')")
        page.click("#go-user")
        page.wait_for_selector("#recs li[data-item] .reason")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "serve-page.png")
    assert problems == []
    assert all(u.startswith(server.url) or u.startswith("data:") for u in requests), requests
