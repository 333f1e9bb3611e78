"""Headless Chromium driven over the DevTools protocol on a pipe, with the standard library only.

Debian's ``chromium`` started with ``--remote-debugging-pipe`` reads DevTools commands from
file descriptor 3 and writes replies and events to descriptor 4, each message a JSON object
ended by a NUL byte (the transport Puppeteer and Playwright use). No websocket client, no
driver binary and no download: the browser the Debian package installs is the one tested.

The QC-report test opens a page from ``file://``, waits for its load event (which fires once
every image has loaded or failed), reads the state of every ``<img>`` and takes a full-page
screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Chromium", "PageImages", "find_chromium"]


def find_chromium() -> str:
    """The Chromium executable (Debian's ``chromium``); a missing browser is an error."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("chromium is not installed (Debian package 'chromium'; `make test` installs it)")


@dataclass(frozen=True)
class PageImages:
    """What the page's ``<img>`` elements hold after the load event."""

    images: list[dict[str, Any]]  # src, complete, naturalWidth, naturalHeight per <img>
    resources: list[str]  # every URL the page fetched (performance entries)
    title: str


class Chromium:
    """A headless Chromium session on a DevTools pipe; use as a context manager.

    Parameters
    ----------
    width, height : int
        Viewport size in CSS pixels.
    timeout : float
        Seconds to wait for any one reply or event.
    """

    def __init__(self, width: int = 1280, height: int = 900, timeout: float = 60.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self._profile = tempfile.mkdtemp(prefix="vircam-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        args = [find_chromium(), "--headless", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={self._profile}", f"--window-size={width},{height}"]
        if os.geteuid() == 0:  # Chromium refuses to run as root inside its sandbox
            args.append("--no-sandbox")
        args.append("about:blank")

        def fds() -> None:  # the browser's descriptors 3 (commands in) and 4 (replies out)
            commands, replies = os.dup(to_browser_read), os.dup(from_browser_write)  # fresh numbers
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        self._stderr = open(Path(self._profile) / "stderr.log", "wb")  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=fds,
                                         stdout=subprocess.DEVNULL, stderr=self._stderr)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        self.session = self._attach()

    # --- the protocol -------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no message from chromium in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                log = (Path(self._profile) / "stderr.log").read_bytes().decode(errors="replace")
                raise RuntimeError(f"chromium closed its DevTools pipe: {log[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        """The next event ``method`` of the page session (one already received counts)."""
        for index, event in enumerate(self._events):
            if event.get("method") == method:
                return self._events.pop(index)
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self._events.append(event)

    def _attach(self) -> str:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        return session

    # --- what the test asks -------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its load event (every image loaded or failed)."""
        self._events.clear()
        result = self.send("Page.navigate", {"url": url}, session=self.session)
        if result.get("errorText"):
            raise RuntimeError(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def images(self) -> PageImages:
        """The load state of every ``<img>`` and every resource URL the page fetched."""
        images = self.evaluate(
            "Array.from(document.images, i => ({src: i.getAttribute('src'), url: i.currentSrc,"
            " complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}))"
        )
        resources = self.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        return PageImages(images, resources, self.evaluate("document.title"))

    def screenshot(self, path: Path, max_height: int = 16000) -> Path:
        """A PNG of the whole page (up to ``max_height`` CSS pixels tall)."""
        metrics = self.send("Page.getLayoutMetrics", session=self.session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(int(size["height"]) + 1, max_height)
        data = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1},
        }, session=self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # --- the process ----------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
