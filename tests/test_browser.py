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


PAGES = [
    "/",
    "/?q=How+many+houses+have+been+destroyed%3F&k=3",
    "/?q=ceasefire&since=2020-01-01&sort=date&k=3",
    "/articles",
    "/articles/003_10ac5b029c183a1d.txt?p=3#p3s1",
    "/nope",
]
AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
ENHANCED = {"runOnly": {"type": "rule", "values": ["color-contrast-enhanced"]}}  # 7:1, AAA


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)
def test_every_page_fits_a_phone_and_passes_axe_at_wcag_21_aa_and_enhanced_contrast(server):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    axe, problems = Axe(), []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        for width, height in ((1280, 900), (390, 844)):
            page = browser.new_page(viewport={"width": width, "height": height})
            for path in PAGES:
                page.goto(server + path)
                for summary in page.locator("li.hit details summary").all()[:4]:
                    summary.click()  # the cite and why-ranked disclosures, opened
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if overflow > 0:
                    problems.append(f"{path} at {width}px overflows by {overflow}px")
                for options in (AA, ENHANCED):
                    for v in axe.run(page, options=options).response["violations"]:
                        problems.append(f"{path} at {width}px: {v['id']} ({len(v['nodes'])} nodes)")
            page.close()
        browser.close()
    assert problems == []


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)
def test_pages_sort_and_the_undated_toggle_by_clicking(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(server + "/?q=ceasefire&k=3")
        heading = page.locator("#results-heading")
        assert heading.inner_text().startswith("Results 1–3 of ")
        page.get_by_role("link", name="Next 3 →").click()
        page.wait_for_url("**offset=3")
        assert page.locator("#results-heading").inner_text().startswith("Results 4–6 of ")
        page.get_by_role("link", name="← Previous 3").click()
        page.wait_for_selector("text=Results 1–3 of")
        if page.locator("details.filters[open]").count() == 0:
            page.locator("details.filters summary").click()
        page.locator("#since").fill("2020-01-01")
        page.locator("#sort").select_option("date")
        page.get_by_role("button", name="Ask").click()
        page.wait_for_url("**sort=date**")
        notice = page.get_by_role("status")
        assert "undated results hidden by the date range" in notice.inner_text()
        page.get_by_role("link", name="Include them").click()
        page.wait_for_url("**include_undated=1**")
        assert page.get_by_role("status").count() == 0
        page.locator("nav.facets").get_by_role("link", name="2020").click()  # a year facet
        page.wait_for_url("**until=2020-12-31**")
        assert page.locator("#since").input_value() == "2020-01-01"
        first = page.locator("li.hit").first
        first.locator("details.why summary").click()
        assert first.locator("details.why table").is_visible()
        first.locator("details.cite-this summary").click()
        bibtex = first.get_by_role("link", name="BibTeX")
        assert bibtex.is_visible()  # the Cite disclosure opened; the browser downloads it
        reply = page.request.get(server + bibtex.get_attribute("href"))
        assert reply.ok and reply.text().startswith("@article{kqa-")
        browser.close()
