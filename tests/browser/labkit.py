"""A real JupyterLab for the browser tests: loopback only, a random token, isolated Jupyter dirs.

The server runs ``python -m jupyter lab`` from this virtualenv on 127.0.0.1 with an OS-chosen port,
a temporary root directory and temporary Jupyter config/data/runtime/settings directories, so that
nothing from the machine's or the user's Jupyter setup leaks in and nothing it writes leaks out. Its
``python3`` kernel is the venv's interpreter (:func:`nbkit.isolated_jupyter_env`). Readiness is the
server's own runtime file plus a 200 from ``/api/status``, never a sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbkit import isolated_jupyter_env
from playwright.async_api import Locator, Page, Route, async_playwright, expect

__all__ = [
    "ALL_CELLS_RAN",
    "CHARTS_FILL_THE_VIEW",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "CLIPPED_TEXT",
    "KERNEL_IDLE",
    "LOAD",
    "MONEY_TEXT",
    "OVERFLOWING_TEXT",
    "LabServer",
    "NotebookPage",
    "OpenNotebook",
    "chromium_or_skip",
    "code_cell_count",
    "notebook_page",
    "run_all_cells",
    "start_lab",
]

CHROMIUM = Path("/usr/bin/chromium")  # Debian's build; a browser is never downloaded
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

START_TIMEOUT = 180.0  # seconds; the machine is small and shared, JupyterLab starts in ~5-20 s
SHUTDOWN_TIMEOUT = 60.0  # seconds for /api/shutdown: each kernel gets jupyter_client's 5 s to exit
EXIT_GRACE = 5.0  # seconds from a confirmed cleanup to the process's exit (well under 1 s when it exits)
CLEANUP_GRACE = 30.0  # seconds for the cleanup SIGTERM starts when the API does not answer
LOAD = 180_000  # ms: JupyterLab's first load of a notebook page on a small shared machine
# The status bar once the notebook's kernel is connected and idle ("No Kernel | Initializing" before).
KERNEL_IDLE = re.compile(r"^Python 3 \(legion-nb venv\) \| Idle$")

# JupyterLab's own settings: no news or update checks (no traffic off the machine), and every cell
# attached to the page so that the test sees all panels, not only those in the viewport.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
LAB_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
    }
}


@dataclass
class LabServer:
    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    root: Path
    log_path: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, method: str = "GET", *, timeout: float = 10) -> Any:
        request = urllib.request.Request(
            f"{self.base_url}/api/{path}",
            method=method,
            data=b"" if method == "POST" else None,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Shut the server down through its API, then make sure its process is gone.

        ``POST /api/shutdown`` answers only once the server's own cleanup has run (kernels shut
        down, extensions stopped, websockets closed); then the server stops its event loop without
        draining the tasks still running. A request in flight at that moment (a contents read the
        closed page started, say) leaves an idle AnyIO worker thread that is never told to stop,
        and the interpreter joins it for ever at exit. After the confirmed cleanup nothing is left
        to lose, so a server still there after :data:`EXIT_GRACE` is killed. Without that answer,
        SIGTERM asks for the same cleanup and the server gets :data:`CLEANUP_GRACE` for it.
        """
        if self.process.poll() is not None:
            return
        try:
            self.api("shutdown", method="POST", timeout=SHUTDOWN_TIMEOUT)
        except (OSError, urllib.error.URLError):
            self.process.send_signal(signal.SIGTERM)
            grace = CLEANUP_GRACE
        else:
            grace = EXIT_GRACE
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def chromium_or_skip(path: Path) -> Path:
    """``path`` if Chromium is there; else a skip on a developer machine and a failure under CI=true,
    where ``scripts/setup`` installs it: a CI run must never pass by not looking at a browser."""
    if path.exists():
        return path
    message = f"{path} is missing: install Debian's chromium (apt-get install chromium, or scripts/setup)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _write_settings(settings_dir: Path, config_dir: Path) -> None:
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    (config_dir / "jupyter_lab_config.json").write_text(json.dumps(LAB_CONFIG), encoding="utf-8")


def start_lab(root: Path, home: Path) -> LabServer:
    """Start JupyterLab serving ``root``; ``home`` holds its private Jupyter directories."""
    env = dict(os.environ)
    env.update(isolated_jupyter_env(home / "jupyter"))
    settings_dir = home / "lab-settings"
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings_dir)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "lab-workspaces")
    _write_settings(settings_dir, Path(env["JUPYTER_CONFIG_DIR"]))
    token = secrets.token_hex(24)
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    log_path = home / "jupyterlab.log"
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.terminals_enabled=False",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # CI containers run as root; the server still binds loopback only
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LabServer(process, "", token, root, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    info_file = runtime / f"jpserver-{process.pid}.json"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
        if info_file.exists():
            try:
                info = json.loads(info_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                info = None  # caught mid-write; read it again on the next round
            if info is not None:
                server.base_url = f"http://127.0.0.1:{info['port']}"
                try:
                    server.api("status")
                except (OSError, urllib.error.URLError):
                    pass  # not answering yet
                else:
                    return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"JupyterLab did not become ready in {START_TIMEOUT:.0f} s:\n{server.log_tail()}")


WIDGET_ERROR = re.compile(r"widget|lnb|anywidget", re.IGNORECASE)
"""A browser console error about a widget, a Legion panel (``lnb-``) or anywidget."""


@dataclass
class NotebookPage:
    """A notebook open in JupyterLab: the page, its kernel's idle indicator and what the page reported
    (uncaught page errors, console errors, every URL it requested, and the non-loopback ones an
    offline page aborted)."""

    page: Page
    idle: Locator
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)

    @property
    def widget_errors(self) -> list[str]:
        """The console errors about widgets or panels (:data:`WIDGET_ERROR`)."""
        return [error for error in self.console_errors if WIDGET_ERROR.search(error)]

    async def run_all(self, code_cells: int, *, timeout: float) -> None:
        """Run > Run All Cells, then wait until each of the ``code_cells`` shows its execution count
        and the kernel is idle again."""
        await run_all_cells(self.page)
        await self.page.wait_for_function(ALL_CELLS_RAN, arg=code_cells, timeout=timeout)
        await expect(self.idle).to_have_count(1, timeout=timeout)

    async def expect_no_widget_failures(self, *, timeout: float) -> None:
        """No widget is still "Loading widget" (waiting up to ``timeout`` ms for the last ones), none
        shows "Error displaying widget", and no cell wrote to stderr."""
        await expect(self.page.get_by_text("Loading widget")).to_have_count(0, timeout=timeout)
        await expect(self.page.get_by_text("Error displaying widget")).to_have_count(0)
        stderr = self.page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        assert await stderr.count() == 0, await stderr.all_inner_texts()


OpenNotebook = Callable[..., contextlib.AbstractAsyncContextManager[NotebookPage]]
"""The ``open_notebook`` fixture (conftest.py): :func:`notebook_page` bound to the module's lab."""


def code_cell_count(path: Path) -> int:
    """How many code cells the notebook at ``path`` holds (what :meth:`NotebookPage.run_all` awaits)."""
    # nbformat ships no type information
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return sum(cell.cell_type == "code" for cell in nb.cells)


@contextlib.asynccontextmanager
async def notebook_page(
    lab: LabServer,
    chromium: Path,
    notebook: str,
    *,
    viewport: dict[str, int],
    failure_shot: Path,
    load_timeout: float = LOAD,
    offline: bool = False,
) -> AsyncIterator[NotebookPage]:
    """Chromium with ``notebook`` open in ``lab``, its kernel connected and idle (cells sent any
    earlier would go nowhere); a failing body leaves a full-page screenshot at ``failure_shot``.

    ``offline`` aborts every request that leaves the loopback (CDNs, fonts, telemetry) and records
    its URL in ``remote_requests``: a page that needs the network fails visibly, and the test can
    assert that none was even attempted."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]  # a ViewportSize
        opened = NotebookPage(page, page.locator(".jp-StatusBar-Widget").get_by_text(KERNEL_IDLE))
        try:
            page.on("pageerror", lambda error: opened.page_errors.append(str(error)))
            page.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda request: opened.requests.append(request.url))
            if offline:
                await page.route("**/*", lambda route: _loopback_only(route, opened.remote_requests))
            await page.goto(lab.url(f"lab/tree/{notebook}"))
            await expect(opened.idle).to_have_count(1, timeout=load_timeout)
            yield opened
        except BaseException:
            await page.screenshot(path=str(failure_shot), full_page=True)
            raise
        finally:
            await browser.close()


ALL_CELLS_RAN = """(n) => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')];
    return prompts.length === n && prompts.every((p) => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
}"""
"""A page function: ``n`` code cells, each with an execution count in its prompt (all have run)."""

MONEY_TEXT = r"[+-]?\d+\.\d\d(\d*[1-9])?"
"""Money as a panel shows it: at least the cents, no zeros after the last significant digit."""

CLIPPED_TEXT = """(panel) => {
    const cut = (el) => el.scrollWidth > el.clientWidth;
    const clipped = [];
    for (const th of panel.querySelectorAll('thead th')) if (cut(th)) clipped.push(th.textContent);
    for (const badge of panel.querySelectorAll('tbody .lnb-badge')) {
        if (cut(badge)) clipped.push(badge.textContent);
    }
    for (const td of panel.querySelectorAll('tbody tr[data-name] td.lnb-short')) {
        const range = document.createRange();
        range.selectNodeContents(td);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) clipped.push(td.textContent);
    }
    return clipped;
}"""
"""A page function on a panel: the texts it cuts short (a header or a badge ending in an ellipsis)
or wraps although they are short values (cells marked ``lnb-short``: a kind, a provider). Empty
when every header and every common value reads whole."""

OVERFLOWING_TEXT = """(panel) => {
    const over = [];
    if (panel.scrollWidth > panel.clientWidth) {
        over.push(`the panel scrolls: ${panel.scrollWidth}px of content in ${panel.clientWidth}px`);
    }
    const edge = panel.getBoundingClientRect().right;
    for (const cell of panel.querySelectorAll('th, td')) {
        if (cell.getBoundingClientRect().right > edge + 0.5 || cell.scrollWidth > cell.clientWidth) {
            over.push(cell.textContent);
        }
    }
    return over;
}"""
"""A page function on a panel: what does not fit it (a table wider than the panel, so that it
scrolls or its last columns lie past the right edge; a cell whose text runs out of its column).
Empty when every column reads whole within the panel's width."""

CHARTS_FILL_THE_VIEW = """(view) => {
    const inner = view.clientWidth;
    const charts = [...view.querySelectorAll('.main-svg')];
    return charts.length > 0 && charts.every((svg) => svg.getBoundingClientRect().width >= inner - 4);
}"""
"""A page function on a panel's view (the panel and the Plotly charts under it): true once it shows
a chart and every one is as wide as the view within its frame, not Plotly's default 700 px."""

LOOPBACK = re.compile(r"^(https?|wss?)://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?/")


async def _loopback_only(route: Route, remote: list[str]) -> None:
    url = route.request.url
    if LOOPBACK.match(url) or url.startswith(("data:", "blob:")):
        await route.continue_()
    else:
        remote.append(url)
        await route.abort()


async def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, through the menus as an operator would."""
    await page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    await page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
