"""The notebook terminal in a real JupyterLab: typed keys reach a shell on a node, output is drawn.

A small notebook starts a simulated node (real SSH on loopback), records it in a new engine's state
the way deployment does (``tests/terminal/nodekit.py``, copied next to the notebook) and displays a
``TerminalPanel``. Chromium then types ``hostname`` + Enter into xterm.js with the keyboard, and the
node's hostname must appear on the terminal's screen - the whole path page -> kernel -> engine ->
SSH -> node -> engine -> kernel -> page. xterm.js comes from the package, so the page needs no CDN.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from labkit import ALL_CELLS_RAN, LOAD, LabServer, OpenNotebook, run_all_cells
from playwright.async_api import Page, expect

NOTEBOOK = "terminal-check.ipynb"
NODEKIT = Path(__file__).resolve().parents[1] / "terminal" / "nodekit.py"
HOSTNAME = "web-1"
PROMPT = f"legion-admin@{HOSTNAME}:~#"
RUN = 240_000  # ms: every cell, including the kernel start and one Argon2 derivation
SHOWN = 60_000  # ms: output reaching the page

CELLS = [
    f"""\
from pathlib import Path
from nodekit import node_engine, record_node
from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.widgets.terminal import TerminalPanel

node = SimulatedNode("127.78.0.3", hostname={HOSTNAME!r})
await node.start()
engine_context = node_engine(Path("terminal-check.legion"), node, "browser terminal password")
engine = await engine_context.__aenter__()
security = await record_node(engine, node, {HOSTNAME!r})""",
    f"panel = TerminalPanel(engine, {HOSTNAME!r})\npanel",
]

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def serve_terminal_notebook(root: Path) -> int:
    # nbformat ships no type information
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, root / NOTEBOOK)  # type: ignore[no-untyped-call]
    shutil.copy(NODEKIT, root / NODEKIT.name)
    return len(CELLS)


async def screen_lines(page: Page) -> list[str]:
    """The rows xterm.js has drawn (its DOM renderer: one element per row), spaces normalized."""
    rows = await page.locator(".lnb-terminal .xterm-rows > div").all_inner_texts()
    return [row.replace("\xa0", " ").rstrip() for row in rows]


async def until_line(page: Page, wanted: str) -> list[str]:
    for _ in range(SHOWN // 100):
        lines = await screen_lines(page)
        if wanted in lines:
            return lines
        await page.wait_for_timeout(100)
    raise AssertionError(f"the terminal never showed the line {wanted!r}: {await screen_lines(page)}")


async def test_typed_command_runs_on_the_node_and_its_output_is_drawn(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path
) -> None:
    code_cells = serve_terminal_notebook(lab.root)
    async with open_notebook(NOTEBOOK, width=1200, height=1000, shot="browser-terminal") as opened:
        page = opened.page
        await run_all_cells(page)
        await page.wait_for_function(ALL_CELLS_RAN, arg=code_cells, timeout=RUN)

        status = page.locator(".lnb-terminal .lnb-terminal-status")
        await expect(status).to_have_text(f"{HOSTNAME}: open", timeout=SHOWN)
        await expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        for _ in range(SHOWN // 100):
            if any(line.startswith(PROMPT) for line in await screen_lines(page)):
                break
            await page.wait_for_timeout(100)
        else:
            raise AssertionError(f"no shell prompt on the terminal: {await screen_lines(page)}")

        await page.locator(".lnb-terminal .xterm-screen").click()
        await page.keyboard.type("hostname")
        await page.keyboard.press("Enter")
        lines = await until_line(page, HOSTNAME)
        assert f"{PROMPT} hostname" in lines
        assert lines.index(HOSTNAME) == lines.index(f"{PROMPT} hostname") + 1

        # The panel fitted xterm.js to its box and the node's PTY followed (terminal_resize).
        await page.keyboard.type("stty size")
        await page.keyboard.press("Enter")
        terminal = page.locator(".lnb-terminal")
        size = f"{await terminal.get_attribute('data-rows')} {await terminal.get_attribute('data-cols')}"
        assert size != "24 80"  # fitted to the panel's box, not the default size
        shown = await until_line(page, size)
        await page.screenshot(path=str(artifacts / "browser-terminal.png"), full_page=True)

        # A new view (the page reloaded, the kernel still running) draws the kept scrollback.
        # (saved through the menu: keys typed now would go to the shell, Ctrl+S included)
        await page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
        await page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save Notebook$")).click()
        await expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=SHOWN)
        await page.reload()
        await expect(status).to_have_text(f"{HOSTNAME}: open", timeout=LOAD)
        redrawn = await until_line(page, size)
        assert redrawn[: shown.index(size) + 1] == shown[: shown.index(size) + 1]
    assert opened.page_errors == []
    remote = [url for url in opened.requests if not url.startswith(("http://127.0.0.1", "blob:", "data:"))]
    assert remote == []
