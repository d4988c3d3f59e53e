"""The live page in a real headless Chromium, during a real orchestration with the built-in demo agent
(slowed by SPECFLOWD_DEMO_TASK_S): a mark dropped into the inbox shows as done without a reload
within a second of its commit, an agent's card comes when its batch starts and goes when it ends,
hostile task text stays text, and the spec's feed opens with its evidence commits.

Times come from what was recorded, never from sleeps: the commit's time is the mtime of the ref
file that holds it (read through one descriptor, so the time is that very version's), the DOM's from
a MutationObserver the test puts in the page, both on this machine's one wall clock."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.conftest import run_cli, wait_for
from tests.e2e.orchestration.conftest import demo_project, start
from tests.views.webtools import WebProcess

TASK_S = "2"  # the demo agent's pause before each task: the quiet moment the test's mark lands in
HOSTILE_TITLE = "<script>window.pwned = 1</script> \x1b[31mred\x1b[0m \x1b]0;owned\x07 text"
HOSTILE_SECTION = 'Core <img src=x onerror="window.pwned = 2">'
TASKS = f"""# Tasks

## Setup
- [ ] T001 Create the greeting
- [ ] T002 {HOSTILE_TITLE}
- [ ] T003 Add the farewell

## {HOSTILE_SECTION}
- [ ] T004 Wire them together
- [ ] T005 Document it
"""
# Installed in the page by the test: when each agent card came and went, and when each task of an
# orchestration first showed as done (browser clock, ms).
WATCH = """
const w = window.__watch = {cards: {}, done: {}};
const look = () => {
  const now = Date.now();
  const present = new Set();
  for (const c of document.querySelectorAll("#agents .card[data-card]")) {
    present.add(c.dataset.card);
    if (!w.cards[c.dataset.card]) {
      w.cards[c.dataset.card] = {appeared: now, gone: null, batch: c.querySelector(".batch").textContent};
    }
  }
  for (const [id, c] of Object.entries(w.cards)) if (!present.has(id) && c.gone === null) c.gone = now;
  for (const t of document.querySelectorAll(".orch[data-orchestration] .task[data-status=done]")) {
    const key = t.closest(".orch").dataset.orchestration + "/" + t.dataset.task;
    if (!(key in w.done)) w.done[key] = now;
  }
};
new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true});
look();
"""


@pytest.fixture
def project(repo: Path) -> Path:
    return demo_project(repo, TASKS)


def page(browser: webdriver.Chrome, script: str) -> Any:
    return browser.execute_script(script)


def until(browser: webdriver.Chrome, script: str, message: str, timeout: float = 60) -> Any:
    """Wait for a condition read from the page (a JS expression), with a deadline."""
    check: Callable[[], Any] = lambda: page(browser, f"return ({script});")  # noqa: E731
    return wait_for(check, timeout, interval=0.02, message=message)


def ref_version(project: Path) -> tuple[str, int]:
    """The design-docs branch's commit and when that version of the ref was written (ns)."""
    fd = os.open(project / ".git" / "refs" / "heads" / "helix-design-docs", os.O_RDONLY)
    try:
        return os.read(fd, 100).decode().strip(), os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)


def test_the_page_follows_an_orchestration_live(browser: webdriver.Chrome, project: Path, start_daemon: Any,
                                                tmp_path: Path) -> None:
    start_daemon(project, env={"SPECFLOWD_DEMO_TASK_S": TASK_S})
    web = WebProcess(project, log=tmp_path / "web.log")
    try:
        browser.get(web.url)
        until(browser, "document.getElementById('live').dataset.state === 'live'", "the page to go live")
        page(browser, WATCH)
        oid = start(project)

        # A card comes when batch 1 starts.
        first = until(browser, "Object.entries(__watch.cards).find(([id, c]) => c.batch.includes('1/2'))",
                      "batch 1's agent card")[0]
        assert first.startswith(f"{oid}-")

        # A mark dropped into the inbox, while the agent pauses after T001, shows without a reload.
        until(browser, f"'{oid}/T001' in __watch.done", "T001 done by the agent")
        r = run_cli("mark", "T005", "--done", "--spec", "demo", "--wait", "30", "--json", cwd=project)
        assert r.returncode == 0, r.stderr
        commit = json.loads(r.stdout)["result"]["commit"]
        tip, written_ns = ref_version(project)
        assert tip == commit, "another commit landed right after the mark: the agent's pause was too short"
        shown_ms = until(browser, f"__watch.done['{oid}/T005']", "T005 to show as done")
        latency_ms = shown_ms - written_ns / 1e6
        print(f"\nmark -> DOM: {latency_ms:.0f} ms after the commit")
        assert 0 <= latency_ms <= 1000, latency_ms

        shot = tmp_path / "page.png"
        assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("SPECFLOWD_WEB_SCREENSHOT"):  # README's picture: see its section on the page
            shutil.copyfile(shot, os.environ["SPECFLOWD_WEB_SCREENSHOT"])

        # Hostile text from the task list is text: nothing ran, no element was made from it.
        orch = f".orch[data-orchestration='{oid}']"
        title = page(browser, f"return document.querySelector(\"{orch} .task[data-task='T002'] .title\").textContent")
        assert title == "<script>window.pwned = 1</script> \\x1b[31mred\\x1b[0m \\x1b]0;owned\\x07 text"
        section = page(browser, f"return document.querySelector(\"{orch} .batch[data-batch='2'] .name\").textContent")
        assert section == f"2. {HOSTILE_SECTION}"
        assert page(browser, "return [window.pwned, document.scripts.length, document.images.length]") == [None, 1, 0]

        # Batch 1's card goes when the batch ends, and batch 2's comes.
        until(browser, f"__watch.cards['{first}'].gone", "batch 1's card to go")
        second = until(browser, "Object.entries(__watch.cards).find(([id, c]) => c.batch.includes('2/2'))",
                       "batch 2's agent card")[0]
        assert second != first
        until(browser, f"document.querySelector(\"{orch}\").dataset.status === 'completed'", "the orchestration to end")
        until(browser, "document.querySelectorAll('#agents .card').length === 0", "the last card to go")
        assert page(browser, f"return __watch.cards['{second}'].gone") is not None
        assert page(browser, "return performance.getEntriesByType('navigation').length") == 1
        assert page(browser, "return typeof window.__watch") == "object"  # the same page all along

        # The spec's feed opens beside the page, with links to the evidence commits.
        browser.find_element(By.CSS_SELECTOR, f"{orch} header a.spec").click()
        until(browser, "document.querySelectorAll('#panel .entry').length > 0", "the spec's feed")
        subjects = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#panel .entry .subject")]
        assert any(s.startswith("T005 done") for s in subjects), subjects
        browser.find_element(By.CSS_SELECTOR, "#panel a.evidence").click()
        until(browser, "document.querySelector('#panel .files td:last-child')", "the evidence commit")
        files = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#panel .files td:last-child")]
        assert files and all(f.startswith("specflow-demo/T00") for f in files), files

        problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert problems == [], problems
    finally:
        web.stop()
