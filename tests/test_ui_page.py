"""The page itself in Debian's chromium: what a newcomer sees at 1280×800 and on a phone,
examples that ask, citation chips, the line of waiting questions, the evaluation's progress
and cancel, and axe-core's accessibility rules. The server runs on fakes (tests/fake_server.py):
these tests are about the page; tests/test_ui.py drives the real models.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO
from .test_ui import CHROMIUM, _free_port

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]
AXE = Path(os.environ.get("QA_AXE_JS", REPO / "tests/.axe/node_modules/axe-core/axe.min.js"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
QUESTION = "Which countries led the initiative on veto restraint?"


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "DELAY": "0.03", "QA_UPLOADS": str(root / "uploads")}
    log = open(root / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "tests.fake_server", str(port), str(root)], cwd=REPO,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        assert process.poll() is None, (root / "server.log").read_text()[-2000:]
        try:
            urllib.request.urlopen(address, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    yield address
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, url, width=1280, height=800):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.wait_for_function("() => document.body.innerText.includes('Ready')", timeout=30_000)
    return page


def _fully_visible(page, selector: str) -> bool:
    return page.evaluate("""(selector) => [...document.querySelectorAll(selector)].every(e => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; })""",
                         selector)


def _axe(page) -> list:
    if not AXE.exists():
        pytest.skip("axe-core not installed: (cd tests/.axe && npm install axe-core)")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document)).violations.map(v => ({id: v.id, "
                               "impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))")
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def test_laptop_first_screen_orients_and_shows_examples_and_box(browser, url):
    page = _open(browser, url)
    text = page.inner_text("body")
    assert "r2p-2017-dialogue-summary.txt" in text and "6 September 2017" in text and "19 paragraphs" in text
    assert "Ask what these documents say" in text
    assert page.locator(".qa-example").count() == 4
    for selector in ("#question textarea", "#ask", ".qa-example", "#clear", "h1"):
        assert _fully_visible(page, selector), f"{selector} is not fully visible at 1280×800 without scrolling"
    assert page.evaluate("() => document.scrollingElement.scrollTop") == 0
    page.close()


def test_an_example_asks_when_clicked_and_its_chip_opens_the_paragraph(browser, url):
    page = _open(browser, url)
    page.get_by_role("button", name=QUESTION).click()
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('Sources (1)')", timeout=30_000)
    chat = page.inner_text("#chat")
    assert QUESTION in chat and "France and Mexico" in chat
    assert page.input_value("#question textarea") == ""
    source = page.locator("#chat details[id^='qa-src-']").first
    assert not source.evaluate("d => d.open")  # sources are closed: the answer is not repeated
    page.locator("#chat a.qa-chip").first.click()
    assert source.evaluate("d => d.open")
    assert "Security Council fails to take action" in page.inner_text("#chat")
    page.close()


def test_no_serious_or_critical_axe_violations(browser, url):
    page = _open(browser, url)
    assert _axe(page) == []
    # The question box has its own name, not "Textbox".
    assert page.get_by_role("textbox", name="Your question").count() == 1
    page.fill("#question textarea", QUESTION)
    page.click("#ask")
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('Sources (1)')", timeout=30_000)
    page.locator("#chat a.qa-chip").first.click()
    assert _axe(page) == []
    for tab in ("Documents", "Evaluate"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(300)
        assert _axe(page) == [], tab
    page.close()


def test_a_queued_question_says_so_in_place_with_its_position(browser, url):
    first, second = _open(browser, url), _open(browser, url)
    long_one = "Why did some delegates think formal agenda inclusion was premature?"
    first.fill("#question textarea", long_one)
    first.click("#ask")
    first.wait_for_function("() => document.querySelector('#chat').innerText.includes('Checking')", timeout=30_000)
    second.fill("#question textarea", QUESTION)
    second.click("#ask")
    second.wait_for_function("() => document.querySelector('#chat').innerText.includes('Waiting for your turn')",
                             timeout=10_000)
    assert "you are number 2 in line" in second.inner_text("#chat")
    assert QUESTION in second.inner_text("#chat")  # the question stays where it was asked
    second.wait_for_function("() => document.querySelector('#chat').innerText.includes('Sources (')", timeout=60_000)
    assert "Waiting" not in second.inner_text("#chat")
    first.close(), second.close()


def test_phone_keeps_the_new_answers_first_line_in_view(browser, url):
    page = _open(browser, url, 390, 844)
    for _ in range(2):  # the second answer is the one that would scroll out of view
        if _ == 0:
            page.fill("#question textarea", QUESTION)
            page.click("#ask")
        else:  # an example, tapped below the box: the page is scrolled to its end
            page.get_by_role("button", name=QUESTION).click()
        page.wait_for_function("(n) => document.querySelector('#chat').innerText.split('Sources (').length > n",
                               arg=_ + 1, timeout=30_000)
    page.wait_for_timeout(500)
    top = page.evaluate("""() => {
        const bots = document.querySelectorAll('#chat .message-row.bot-row, #chat [data-testid="bot"]');
        const last = bots[bots.length - 1].getBoundingClientRect();
        const users = document.querySelectorAll('#chat [data-testid="user"]');
        const chat = document.querySelector('#chat').getBoundingClientRect();
        return {top: last.top, question: users[users.length - 1].getBoundingClientRect().top,
                chatTop: chat.top, chatBottom: chat.bottom, height: innerHeight}; }""")
    assert top["question"] >= 0, top  # and the question it answers, above it
    # The answer's first line is on screen, inside the chat's visible part.
    assert 0 <= top["top"] and top["top"] + 20 <= min(top["height"], top["chatBottom"]), top
    assert top["top"] >= top["chatTop"] - 1, top
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.close()


def test_evaluation_shows_progress_and_cancel_stops_it_within_5_s(browser, url):
    page = _open(browser, url)
    page.get_by_role("tab", name="Evaluate").click()
    page.click("#run-eval")
    page.wait_for_function("() => /\\d+ of \\d+ questions · .* left/.test(document.querySelector('#eval-progress')"
                           ".innerText)", timeout=60_000)
    began = time.monotonic()
    page.click("#cancel-eval")
    page.wait_for_function("() => document.querySelector('#eval-progress').innerText.includes('stopped after')",
                           timeout=5_000)
    assert time.monotonic() - began < 5
    page.close()


def test_closing_the_page_stops_its_evaluation(browser, url):
    first = _open(browser, url)
    first.get_by_role("tab", name="Evaluate").click()
    first.click("#run-eval")
    first.wait_for_function("() => document.querySelector('#eval-progress').innerText.includes('Evaluating')",
                            timeout=30_000)
    first.close()
    second = _open(browser, url)
    second.get_by_role("tab", name="Evaluate").click()
    deadline = time.monotonic() + 60
    while True:  # the server notices the closed page within Gradio's heartbeat
        second.click("#run-eval")
        second.wait_for_function("() => /Evaluating|another visitor/.test(document.querySelector('#eval-progress')"
                                 ".innerText)", timeout=10_000)
        shown = second.inner_text("#eval-progress")
        if "Evaluating" in shown:
            break
        assert "another visitor's evaluation is running" in shown
        assert time.monotonic() < deadline, "the closed page's evaluation kept running"
        time.sleep(2)
    second.click("#cancel-eval")
    second.wait_for_function("() => document.querySelector('#eval-progress').innerText.includes('stopped after')",
                             timeout=5_000)
    second.close()


def test_a_docx_upload_gives_one_message_and_no_stuck_percentage(browser, url):
    page = _open(browser, url)
    page.evaluate("""() => { window.seen = []; window.live = [];
        new MutationObserver(() => { window.seen.push(document.body.innerText);
            document.querySelectorAll('[aria-live], [role=status]').forEach(e => window.live.push(e.innerText)); })
        .observe(document.body, {childList: true, subtree: true, characterData: true}); }""")
    page.get_by_role("tab", name="Documents").click()
    page.set_input_files("input[type=file]", str(REPO / "testsets/layout/apache-2.0.docx"))
    page.wait_for_timeout(1000)
    page.click("#add")
    page.wait_for_function("() => document.querySelector('#upload-result').innerText.trim().length > 0",
                           timeout=60_000)
    page.wait_for_timeout(1000)
    assert page.inner_text("#upload-result").strip() == "✓ Added apache-2-0.docx. Ask about it in the chat."
    assert page.locator(".toast-body").count() == 0  # no second message in a toast
    seen, live = page.evaluate("() => window.seen"), page.evaluate("() => window.live")
    assert not any("0%" in text for text in seen)
    assert not any("common." in text for text in seen + live)
    assert "apache-2-0.docx" in page.inner_text("#overview")  # the new document is named at the top
    page.close()

