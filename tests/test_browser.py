"""A real browser: Debian's headless Chromium driven by Playwright against `karabakh-qa serve`."""

from pathlib import Path

import pytest

from karabakh_qa.devserver import running_server

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
OUT = Path(__file__).resolve().parents[1] / "test-output"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture
def server(seed_settings):
    env = {
        "KARABAKH_QA_ARTICLES": str(seed_settings.articles_dir),
        "KARABAKH_QA_INDEX": str(seed_settings.index_dir),
    }
    with running_server(["--model", "hash-bow-64"], env, timeout=60) as (url, _):
        yield url


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)
def test_ask_follow_citation_and_screenshot(server):
    from playwright.sync_api import sync_playwright

    OUT.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(server + "/")
        page.get_by_label("Your question").fill("How many houses have been destroyed?")
        page.keyboard.press("Enter")
        page.wait_for_selector("li.hit")
        first = page.locator("li.hit").first
        assert "1,165 houses" in first.locator("blockquote").inner_text()
        assert "1,165" in first.locator("mark").first.inner_text()
        link = first.locator("a.cite-link")
        assert link.inner_text() == "003_10ac5b029c183a1d.txt, paragraph 3"
        page.screenshot(path=str(OUT / "results.png"), full_page=True)
        link.click()
        page.wait_for_url("**/articles/003_10ac5b029c183a1d.txt?p=3#p3s1")
        cited = page.locator("p.para.cited")
        assert cited.count() == 1 and cited.get_attribute("id") == "p3"
        assert "1,165 houses" in cited.inner_text()
        sentence = page.locator(".sent:target")  # the deep link marks the quoted sentence
        assert sentence.get_attribute("id") == "p3s1"
        assert "destroyed 1,165 houses" in sentence.inner_text()
        assert page.locator("h1").count() == 1
        page.screenshot(path=str(OUT / "article.png"), full_page=True)
        browser.close()
    assert (OUT / "results.png").stat().st_size > 10_000
