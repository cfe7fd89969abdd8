"""The console end to end in a real browser (Debian's Chromium driven by Playwright) over
a real server (uvicorn on a loopback port) and the 2019 world on SQLite: sign in, every
page (screenshots in build/screenshots/), a violation appearing live while events are
posted, a ban approved in the review queue and the gate denying that account's next
event, an evidence bundle exported and verified (by the independent verifier too), sign
out, and a wrong key and a forged CSRF token refused."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from web_support import HOSTILE, Console, load_world, make_console

from spywall.evidence.verify import verify_bundle
from spywall.platform import db, web
from spywall.platform.world import Truth

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed at /usr/bin/chromium "
                                       "(make system-deps); no browser is ever downloaded")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
WAIT = 30_000        # ms: generous, the machine is shared
PAGES = {"live": "/ui/live", "campaigns": "/ui/campaigns", "review": "/ui/review",
         "registry": "/ui/registry", "notifications": "/ui/notifications",
         "evidence": "/ui/evidence"}


@dataclass
class Served:
    url: str
    console: Console
    truth: Truth

    def api(self, path: str, who: str, body: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=60,
                          headers={"Authorization": f"Bearer {self.console.keys[who]}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{tmp / 'platform.db'}"
    db.init_schema(db.make_engine(url))
    truth = load_world(url, tmp / "world")
    # The Secure flag as in production: Chromium keeps Secure cookies on loopback HTTP.
    console = make_console(url, tmp, secure_cookie=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(console.app, host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "uvicorn did not start"
    yield Served(base, console, truth)
    server.should_exit = True
    thread.join(timeout=30)
    console.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  accept_downloads=True)
    context.set_default_timeout(WAIT)
    tab = context.new_page()
    tab.csp_errors = []
    tab.dialogs = []
    tab.on("console", lambda m: tab.csp_errors.append(m.text)
           if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    yield tab
    context.close()


def sign_in(page: Any, served: Served, who: str = "admin") -> None:
    page.goto(served.url + "/ui/live")
    assert page.url.endswith("/ui/login"), "a page without a session sends to sign-in"
    page.fill("#key", served.console.keys[who])
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "spywall_ui"]
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "no script can read the session"
    page.wait_for_selector("h1:text('Live')")


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_wrong_key_refused_then_every_page(page: Any, served: Served) -> None:
    page.goto(served.url + "/ui/login")
    page.fill("#key", "sw_0000000000000000_not-a-key")
    page.click("button[type=submit]")
    assert "Unknown or revoked API key" in page.inner_text("[role=alert]")
    page.fill("#key", served.console.keys["ingest"])
    page.click("button[type=submit]")
    assert "lacks the analyst scope" in page.inner_text("[role=alert]")
    shot(page, "login-refused")
    sign_in(page, served)
    for name, path in PAGES.items():
        page.goto(served.url + path)
        assert page.locator("h1").first.is_visible()
        shot(page, name)
    # Campaigns: the world's actors and a drill-down to one delivery's findings.
    page.goto(served.url + "/ui/campaigns")
    text = page.inner_text("main")
    for actor in served.truth.actors[:3]:
        assert actor in text
    vendor = Path(web.__file__).parent / "static" / "vendor"
    if all((vendor / n).is_file() for n in ("d3.min.js", "topojson-client.min.js",
                                            "countries-110m.json")):
        # d3 over world-atlas's countries: Mexico (ISO 484) shaded for its 3 targets, and a
        # country with none left grey. The counts come from the calling codes.
        mexico = page.locator(".choropleth[data-drawn='1'] path.country[data-country='484']")
        mexico.first.wait_for(timeout=30_000)
        assert mexico.first.get_attribute("data-count") == "3"
        assert mexico.first.get_attribute("fill") != "#e8ecf1"
        brazil = page.locator("path.country[data-country='076']").first
        assert brazil.get_attribute("fill") == "#e8ecf1"
        assert page.locator("path.country").count() > 150, "every country's border"
        bar = page.locator(".barchart[data-drawn='1'] rect.bar[data-key='MX']").first
        widths = [float(b.get_attribute("width") or 0)
                  for b in page.locator(".barchart[data-drawn='1'] rect.bar").all()]
        assert float(bar.get_attribute("width") or 0) == max(widths), "Mexico has the most"
        shot(page, "campaigns-map")
    else:
        assert page.locator("svg.map circle.dot").count() >= 2, "targets in several countries"
    page.locator("table a[href^='/ui/deliveries/']").first.click()
    page.wait_for_selector("h1:text('Delivery')")
    facts = page.inner_text("dl.facts")
    assert "Malicious\nyes" in facts or "Malicious\tyes" in facts, facts
    findings = page.locator("section.payload pre.json").first.inner_text()
    assert '"kind": "exploit"' in findings, "the scan/pcap finding behind the verdict"
    shot(page, "delivery")
    # A phone screen: the pages stay readable (no horizontal scroll of the whole page).
    delivery = page.url
    for size, limit in (((1280, 800), 1280), ((390, 844), 390)):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        for name, url in [*((n, served.url + p) for n, p in PAGES.items()),
                          ("delivery", delivery)]:
            page.goto(url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= limit, f"{name} overflows {size} ({width}px)"
            if limit < 1280 and name in ("campaigns", "review", "live"):
                shot(page, f"{name}-phone")
    assert not page.csp_errors, page.csp_errors


def test_live_violation_appears_without_reload(page: Any, served: Served) -> None:
    sign_in(page, served, "analyst")
    page.goto(served.url + "/ui/live")
    page.wait_for_selector("#live-status:text('Connected')")
    tag = uuid.uuid4().hex[:8]
    barred = {"id": f"live-{tag}", "type": "account.connected", "ts": "2026-12-01T10:00:00Z",
              "account": f"acct-{tag}", "ip": "54.93.81.200", "device": f"d-{tag}",
              "client": "WA/2.26.1 iOS"}
    hostile = {"id": f"hostile-{tag}", "type": "account.connected",
               "ts": "2026-12-01T10:00:01Z", "account": HOSTILE, "ip": "192.0.2.1",
               "device": "d", "client": "WA/2.26.1 iOS"}
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url))
    assert served.api("/v1/events", "ingest", [barred, hostile]).status_code == 200
    row = page.locator("#violations tr", has_text=barred["id"])
    row.wait_for()
    assert "nso-group" in row.inner_text()
    decision = page.locator("#decisions tr", has_text=f"hostile-{tag}")
    decision.wait_for()
    assert HOSTILE in decision.inner_text(), "the account name is shown as text"
    assert not page.dialogs, "no script ran from the data"
    assert not navigations, "the page was updated in place, not reloaded"
    assert page.locator("#reasons tr").count() >= 1
    assert "registry-identifier" in row.inner_text(), "the rule that made it a violation"
    assert "[object Object]" not in page.inner_text("main")
    shot(page, "live-violation")
    assert not page.csp_errors, page.csp_errors


def test_approved_ban_makes_the_gate_deny(page: Any, served: Served) -> None:
    account = served.truth.returning_account
    sign_in(page, served, "analyst")
    page.goto(served.url + "/ui/review")
    card = page.locator("article.ban", has_text=account).filter(has_text="proposed")
    card.wait_for()
    assert "device" in card.inner_text() or "client" in card.inner_text(), \
        "the identifiers that link the account are shown"
    card.locator("input[name=reason]").fill("shares the device with the campaign's actors")
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url))
    card.locator("button[value=approve]").click()
    page.locator("article.ban", has_text=account).filter(has_text="applied").wait_for()
    if served.console.app.state.web.htmx:
        assert not navigations, "with htmx the card is swapped in place"
    shot(page, "review-approved")
    event = {"id": f"after-ban-{uuid.uuid4().hex[:8]}", "type": "call.offered",
             "ts": "2026-07-01T10:00:00Z", "call": f"c-{uuid.uuid4().hex[:6]}",
             "caller": account, "callee": served.truth.targets[0], "ip": "198.51.100.41"}
    answer = served.api("/v1/gate", "ingest", event)
    assert answer.status_code == 200
    assert answer.json()["verdict"] == "deny"
    with served.console.engine.connect() as conn:
        steps = conn.execute(sa.select(db.audit.c.detail).where(
            db.audit.c.action == "ban-approve")).scalars().all()
        logged = conn.execute(sa.text(
            "SELECT body FROM log_entries WHERE kind = 'enforcement'")).scalars().all()
    assert any(s["account"] == account for s in steps)
    assert any(b"shares the device" in bytes(b) and b'"approve"' in bytes(b) for b in logged)


def test_export_and_verify_a_bundle(page: Any, served: Served, tmp_path: Path) -> None:
    sign_in(page, served, "analyst")
    page.goto(served.url + "/ui/evidence")
    page.select_option("#x-party", served.truth.party)
    with page.expect_download() as got:
        page.click("form[action='/ui/evidence/export'] button")
    archive = tmp_path / "bundle.zip"
    got.value.save_as(archive)
    # The independent verifier agrees, before the console is asked.
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(archive) as z:
        z.extractall(folder)
    assert verify_bundle(folder / "bundle").status == 0
    page.goto(served.url + "/ui/evidence")
    assert page.locator("pre.note-text").count() == 1, "the export signed a checkpoint"
    page.set_input_files("#v-file", str(archive))
    page.click("form[action='/ui/evidence/verify'] button")
    page.wait_for_selector("#verify-result")
    assert "intact" in page.inner_text("#verify-result")
    shot(page, "evidence-verified")
    # One changed byte in one entry: the console says so.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tampered, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("entries.jsonl"):
                data = data.replace(b'"nso-group"', b'"nso-groop"', 1)
            out.writestr(info, data)
    page.goto(served.url + "/ui/evidence")
    page.set_input_files("#v-file", str(tampered))
    page.click("form[action='/ui/evidence/verify'] button")
    page.wait_for_selector("#verify-result")
    assert "changed" in page.inner_text("#verify-result")


def test_review_with_plain_forms(page: Any, served: Served) -> None:
    """Without htmx (not vendored) the same forms work as plain HTML posts."""
    settings = served.console.app.state.web
    served.console.app.state.web = dataclasses.replace(settings, htmx=False)
    try:
        sign_in(page, served, "analyst")
        page.goto(served.url + "/ui/review")
        assert page.locator("script[src*=htmx]").count() == 0
        for account, action, status in (("wis-1", "reject", "rejected"),
                                        ("wis-2", "approve", "applied"),
                                        ("wis-2", "revert", "reverted")):
            card = page.locator("article.ban", has_text=f"{account} ")
            card.locator("input[name=reason]").fill(f"{action} by plain form")
            with page.expect_navigation():
                card.locator(f"button[value={action}]").click()
            assert "/ui/review?done=" in page.url
            page.locator("article.ban", has_text=f"{account} ").filter(
                has_text=status).wait_for()
        shot(page, "review-plain")
    finally:
        served.console.app.state.web = settings
    with served.console.engine.connect() as conn:
        steps = conn.execute(sa.select(db.ban_steps.c.step).where(
            db.ban_steps.c.reason.like("% by plain form"))).scalars().all()
    assert sorted(steps) == ["apply", "approve", "reject", "revert"]


def test_forged_csrf_refused_and_sign_out(page: Any, served: Served) -> None:
    # Signing in with the keyboard alone: the key field has the focus, Enter submits.
    page.goto(served.url + "/ui/login")
    assert page.evaluate("document.activeElement.id") == "key"
    page.keyboard.type(served.console.keys["analyst"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/")
    page.goto(served.url + "/ui/evidence")
    form = page.locator("form[action='/ui/evidence/export']")
    form.locator("input[name=csrf]").evaluate("e => e.value = 'forged' + e.value.slice(6)")
    form.locator("button").click()
    page.wait_for_selector("h1:text('403')")
    assert "CSRF" in page.inner_text("main")
    page.goto(served.url + "/ui/live")
    page.click(".signout button")
    page.wait_for_url("**/ui/login")
    page.goto(served.url + "/ui/review")
    assert page.url.endswith("/ui/login"), "signed out: the session is gone"
    cookies = page.context.cookies()
    assert not [c for c in cookies if c["name"] == "spywall_ui"]
    shot(page, "signed-out")
    assert json.dumps(page.csp_errors) == "[]"
