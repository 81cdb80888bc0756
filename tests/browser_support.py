"""Headless Chromium for the browser tests, over the DevTools protocol: a small client on
an aiohttp websocket (no browser download, no extra Python package).

:func:`chromium_binary` finds Debian's Chromium (``SALON_CHROMIUM``, ``/usr/bin/chromium``
or ``chromium`` on the ``PATH``); without one the test is skipped, loudly, and with
``CI=true`` it fails instead. :func:`chromium` starts the browser with a throw-away
profile and yields a :class:`Browser`, whose tabs are :class:`Page` values (one DevTools
connection each); :func:`chromium_page` is the one-tab shortcut.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

__all__ = ["Browser", "Page", "chromium", "chromium_binary", "chromium_page"]

CALL_TIMEOUT = 10.0
"""Seconds one DevTools call may take."""


def chromium_binary(what: str = "the page") -> str:
    """The Chromium to drive; skips the test (fails it with ``CI=true``) when none is
    installed. ``what`` names what goes untested, for the notice.
    """
    path = os.environ.get("SALON_CHROMIUM") or "/usr/bin/chromium"
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    found = shutil.which("chromium")
    if found:
        return found
    reason = (
        f"NO BROWSER: {path} is missing, so {what} was NOT tested in a browser "
        "(install Debian's package: apt-get install -y chromium)"
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason}; CI=true forbids skipping it", pytrace=False)
    pytest.skip(reason)


class Page:
    """One Chromium tab over the DevTools protocol (calls one at a time). The events
    that arrive while a call waits for its answer are kept in :attr:`events`.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, target_id: str | None = None) -> None:
        self.ws = ws
        self.target_id = target_id
        self.events: list[dict[str, Any]] = []
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), CALL_TIMEOUT)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"DevTools connection closed during {method}: {msg!r}")
            data = json.loads(msg.data)
            if data.get("id") != ident:
                if "method" in data:
                    self.events.append(data)
                continue
            if "error" in data:
                raise AssertionError(f"{method} failed: {data['error']}")
            return dict(data.get("result", {}))

    def seen(self, method: str) -> list[dict[str, Any]]:
        """The events named ``method`` received so far (their params)."""
        return [dict(e.get("params") or {}) for e in self.events if e.get("method") == method]

    async def js(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, what: str, timeout: float = 8.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        while True:
            try:
                value = await self.js(guarded)
            except AssertionError:  # the page is between two documents
                value = None
            if value:
                return value
            if loop.time() >= deadline:
                shown = await self.js("document.body ? document.body.innerText : ''")
                raise AssertionError(f"the page never showed {what}; it shows:\n{shown}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str, text: str | None = None) -> None:
        found = await self.js(
            f"""(() => {{
              const all = [...document.querySelectorAll({json.dumps(selector)})];
              const hit = all.find(e => {json.dumps(text)} === null
                                   || e.textContent.includes({json.dumps(text)}));
              if (!hit || hit.disabled) return false;
              hit.click();
              return true;
            }})()"""
        )
        assert found, f"no enabled {selector} with {text!r} to click"

    async def goto(self, url: str, ready: str = "document.readyState === 'complete'",
                   what: str | None = None) -> None:
        """Open ``url`` and wait until ``ready`` holds in the new document."""
        before = await self.js("performance.timeOrigin")
        await self.call("Page.navigate", url=url)
        await self.wait(f"performance.timeOrigin !== {json.dumps(before)} && location.href !== 'about:blank'"
                        f" && ({ready})", what or f"the page {url}")

    async def viewport(self, width: int, height: int = 844, *, mobile: bool | None = None) -> None:
        """Lay the page out ``width`` CSS pixels wide (a phone at 390)."""
        await self.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
            mobile=width < 600 if mobile is None else mobile,
        )

    async def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the page (the whole document when ``full_page``) at ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            layout = metrics.get("cssLayoutViewport") or metrics["layoutViewport"]
            params["clip"] = {"x": 0, "y": 0, "width": layout["clientWidth"],
                              "height": max(size["height"], layout["clientHeight"]), "scale": 1}
            params["captureBeyondViewport"] = True
        shot = await self.call("Page.captureScreenshot", **params)
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))
        return path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class Browser:
    """A running headless Chromium: its DevTools HTTP endpoint and the tabs opened."""

    def __init__(self, port: int, http: aiohttp.ClientSession) -> None:
        self.port = port
        self.http = http

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.asynccontextmanager
    async def page(self, *, first: bool = False) -> AsyncIterator[Page]:
        """A tab: the one the browser opened with (``first``), else a new one."""
        if first:
            async with self.http.get(f"{self.endpoint}/json/list") as resp:
                targets = await resp.json()
            target = next(t for t in targets if t.get("type") == "page")
        else:
            async with self.http.put(f"{self.endpoint}/json/new?about:blank") as resp:
                target = await resp.json()
        async with self.http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws, target.get("id"))
            await page.call("Page.enable")
            await page.call("Runtime.enable")
            yield page


@contextlib.asynccontextmanager
async def chromium(binary: str) -> AsyncIterator[Browser]:
    """Chromium, headless, on a DevTools port of its own choosing, with a fresh profile
    removed afterwards; the whole process group is stopped at the end.
    """
    profile = tempfile.mkdtemp(prefix="salon-chromium-")
    argv = [
        binary,
        "--headless=new",
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--mute-audio",
        "--window-size=1200,900",
        "about:blank",
    ]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        for _ in range(150):
            if port_file.exists() and port_file.read_text().strip():
                break
            if process.returncode is not None:
                raise AssertionError(f"{binary} exited with {process.returncode}")
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{binary} wrote no DevToolsActivePort in 15 s")
        port = int(port_file.read_text().splitlines()[0])
        async with aiohttp.ClientSession() as http:
            yield Browser(port, http)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def chromium_page(binary: str) -> AsyncIterator[Page]:
    """Chromium with its first tab."""
    async with chromium(binary) as browser, browser.page(first=True) as page:
        yield page
