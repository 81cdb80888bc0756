"""The managers' report page of the advisor console, in a real browser: headless Chromium
(tests/browser_support.py) on the console of the WhatsApp channel against the emulator
(tests/console_support.py), over a seeded month of traffic (salon/dev/month.py).

The story: the manager signs in and finds "Report" in the console's bar; no report has
been made yet; she makes the last 30 days' with the form, and the page shows its totals
(those of ``report.json``) and every picture, loaded under the console's content policy;
the full page opens with its stylesheet and pictures. A form without the session's CSRF
key makes nothing. Sophie, an advisor, has no link, and the page, its files and its form
answer her with the console's refusal. Each page fits 390 px and labels its controls.

With ``SALON_CONSOLE_SCREENSHOTS=<dir>`` the page is saved there at 1280 px wide
(``report-console-1280.png``, see docs/images).

Without Chromium the test is skipped, loudly; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from salon.config import Settings
from salon.dev.month import seed_month
from salon.report.plots import PLOTS
from tests.browser_support import Page, chromium, chromium_binary
from tests.console_support import MANAGER, SOPHIE, T0, running_console

SCREENSHOTS = "SALON_CONSOLE_SCREENSHOTS"
UNLABELLED = """[...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden')
  .filter(e => e.tagName === 'BUTTON'
    ? !(e.textContent.trim() || e.getAttribute('aria-label'))
    : !((e.labels && [...e.labels].some(l => l.textContent.trim()))
        || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')))
  .map(e => e.outerHTML)"""
LOADED = ("(() => {{ const s = [...document.querySelectorAll('{0}')].map(i => i.complete && i.naturalWidth);"
          " return s.length && s.every(Boolean) ? s : null; }})()")
"""The natural widths of the pictures ``{0}`` selects, once every one has loaded."""


async def _fits_and_labels(page: Page, what: str) -> None:
    await page.viewport(390)
    try:
        width = await page.js("document.documentElement.scrollWidth")
        assert width <= 390, f"{what} scrolls sideways at 390 px ({width} px wide)"
        assert await page.js(UNLABELLED) == [], f"{what} has form controls without a label"
    finally:
        await page.viewport(1280, 900)


async def _sign_in(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/signin", "!!document.getElementById('token')")
    await page.js("document.getElementById('token').focus()")
    await page.call("Input.insertText", text=token)
    await page.click(".signin button[type=submit]")
    await page.wait("location.pathname.endsWith('/console/inbox')", "the inbox")


async def _status(page: Page, url: str, method: str = "GET", body: str | None = None) -> int:
    """The HTTP status the page's own session gets for ``url``."""
    options: dict[str, object] = {"method": method, "credentials": "same-origin", "redirect": "manual"}
    if body is not None:
        options["body"] = body
        options["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    return int(await page.js(f"fetch({json.dumps(url)}, {json.dumps(options)}).then(r => r.status)"))


async def test_a_manager_makes_and_reads_the_report(settings: Settings, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    binary = chromium_binary("the console's report page")
    folder = tmp_path / "report"
    monkeypatch.setenv("SALON_REPORT_DIR", str(folder))
    month = seed_month(settings.effective_database_url, now=T0)
    assert month.outbound > 1000
    async with (
        running_console(settings, frozen=True) as c,
        chromium(binary) as browser,
        browser.page(first=True) as page,
    ):
        await page.viewport(1280, 900)
        await _sign_in(page, c.url, MANAGER)
        assert await page.js("[...document.querySelectorAll('.bar__nav a')].map(a => a.textContent)") == ["Report"]
        await page.click(".bar__nav a", "Report")
        await page.wait("!!document.getElementById('report-none')", "the page without a report yet")
        assert (await page.js("location.pathname")).endswith("/console/report")
        await _fits_and_labels(page, "the report page without a report")

        # A form without the session's CSRF key makes nothing.
        assert await _status(page, f"{c.url}/report", "POST", "since=7d") == 403
        assert not (folder / "report.json").exists()

        # She makes the last 30 days' report.
        await page.js("document.getElementById('since').value = '30d'")
        await page.click(".report__make button[type=submit]", "Generate now")
        await page.wait("location.search.includes('done=generated')", "the report made", timeout=60)
        manifest = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        assert manifest["period"]["end"] == T0.isoformat() and manifest["empty"] is False
        assert manifest["period"]["start"] == (T0 - timedelta(days=30)).isoformat()
        shown = await page.js("[...document.querySelectorAll('#report-totals dt')]"
                              ".map(dt => [dt.textContent, dt.nextElementSibling.textContent])")
        assert shown == manifest["summary"]
        assert f"{month.handoffs} (" in dict(shown)["Handoffs"]
        assert "The report is made again" in await page.js("document.querySelector('main .notice').textContent")
        sizes = await page.wait(LOADED.format(".report__plot img"), "every picture loaded")
        assert sizes == [p.pixels[0] for p in PLOTS]
        alts = await page.js("[...document.querySelectorAll('.report__plot img')].map(i => i.alt)")
        assert alts == [p.alt for p in PLOTS]
        await _fits_and_labels(page, "the report page")
        shots = os.environ.get(SCREENSHOTS)
        if shots:
            await page.screenshot(Path(shots) / "report-console-1280.png")

        # The full page, with its own stylesheet and pictures, under the same content policy.
        await page.click("#report-made a")
        await page.wait("location.pathname.endsWith('/report/files/report.html')", "the full page")
        sizes = await page.wait(LOADED.format("figure img"), "its pictures")
        assert sizes == [p.pixels[0] for p in PLOTS]
        assert await page.js("getComputedStyle(document.body).backgroundColor") == "rgb(244, 239, 230)"
        await _fits_and_labels(page, "the full page")
        totals = await page.js("document.getElementById('totals').innerText")
        assert dict(manifest["summary"])["Messages sent"] in totals
        assert await _status(page, f"{c.url}/report/files/..%2Fsalon.db") == 404
        assert await _status(page, f"{c.url}/report/files/report.json") == 200

        # Sophie is no manager: no link, and the refusal for the page, its files and its form.
        await page.goto(f"{c.url}/inbox", "!!document.querySelector('.bar__out button')")
        await page.click(".bar__out button", "Sign out")
        await page.wait("location.pathname.endsWith('/console/signin')", "the sign-in page")
        await _sign_in(page, c.url, SOPHIE)
        assert await page.js("document.querySelectorAll('.bar__nav a').length") == 0
        await page.goto(f"{c.url}/report", "!!document.querySelector('.refused')")
        refusal = await page.js("document.querySelector('.refused').innerText")
        assert "The report is for managers" in refusal
        assert "Messages sent" not in await page.js("document.body.innerText")
        assert await _status(page, f"{c.url}/report") == 403
        assert await _status(page, f"{c.url}/report/files/report-cost.png") == 403
        csrf = await page.js("document.querySelector('input[name=csrf]').value")
        before = (folder / "report.json").stat().st_mtime_ns
        assert await _status(page, f"{c.url}/report", "POST", f"csrf={csrf}&since=7d") == 403
        assert (folder / "report.json").stat().st_mtime_ns == before
        await _fits_and_labels(page, "the refusal")
