"""Headless Chromium driven over the Chrome DevTools Protocol, for the dashboard's tests.

The browser is Debian's Chromium with the flags the HTML report's test uses (no network of its
own, a new empty profile); it is driven through its DevTools websocket with aiohttp, which the
project already depends on (no Playwright, no Selenium, no browser download). ``Page`` opens a
URL, evaluates JavaScript in it, answers HTTP authentication prompts the way a person typing in
the browser's login dialog would, and takes screenshots.

Chromium is required: without it the tests fail (never skip), naming the install command.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.test_report_renders import _FLAGS, chromium


class BrowserError(RuntimeError):
    """Chromium answered a DevTools command with an error, or a script threw."""


class Page:
    """One page target of a running Chromium, over its DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.credentials: tuple[str, str] | None = None
        """What the login dialog is answered with (None: cancelled, as a person would)."""
        self.auth_prompts = 0
        self.console: list[str] = []
        self.exceptions: list[str] = []
        self._answers: set[asyncio.Task[Any]] = set()  # kept until done (the loop holds weak refs)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = message.json()
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(BrowserError(str(data["error"])))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                await self._event(data["method"], data.get("params", {}))

    async def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Fetch.requestPaused":
            self._answer("Fetch.continueRequest", requestId=params["requestId"])
        elif method == "Fetch.authRequired":
            self.auth_prompts += 1
            if self.credentials is None:
                answer = {"response": "CancelAuth"}
            else:
                user, password = self.credentials
                answer = {"response": "ProvideCredentials", "username": user, "password": password}
            self._answer(
                "Fetch.continueWithAuth",
                requestId=params["requestId"],
                authChallengeResponse=answer,
            )
        elif method == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(str(params.get("exceptionDetails", {})))

    def _answer(self, method: str, **params: Any) -> None:
        # Sent from the reader, which must not wait for the reply it is the one to read.
        task = asyncio.create_task(self._send(method, **params))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _send(self, method: str, **params: Any) -> Any:
        number = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        await self.ws.send_json({"id": number, "method": method, "params": params})
        return await asyncio.wait_for(future, 60)

    async def enable(self, *, handle_auth: bool = False) -> None:
        """Turn on what the tests read: console, exceptions, and (``handle_auth``) answering
        HTTP authentication with ``credentials``."""
        await self._send("Runtime.enable")
        await self._send("Page.enable")
        if handle_auth:
            await self._send(
                "Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": "*"}]
            )

    async def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its document to load."""
        await self._send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", timeout=30)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the page (promises awaited)."""
        result = await self._send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0, every: float = 0.05) -> Any:
        """Evaluate ``expression`` until it is truthy; its value. ``TimeoutError`` after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(BrowserError):
                value = await self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true after {timeout} s: {expression}")
            await asyncio.sleep(every)

    async def screenshot(self, width: int = 1400, height: int = 3200) -> bytes:
        """A PNG of the page at ``width`` x ``height`` CSS pixels."""
        await self._send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = await self._send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.ws.close()


@contextlib.asynccontextmanager
async def headless_page(tmp: Path) -> AsyncIterator[Page]:
    """A new headless Chromium (its own empty profile under ``tmp``) and its blank page."""
    profile = tmp / f"profile-{time.monotonic_ns()}"
    log = tmp / f"chromium-{time.monotonic_ns()}.log"
    with log.open("wb") as stderr:  # a file, not a pipe nobody reads while it runs
        process = subprocess.Popen(
            [chromium(), *_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise BrowserError(f"chromium exited {process.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools port")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page_target = next(t for t in targets if t.get("type") == "page")
            ws = await session.ws_connect(page_target["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(ws)
            try:
                yield page
            finally:
                await page.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
