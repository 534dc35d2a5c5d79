"""A saved, executed quickstart reopened in JupyterLab shows its panels, not "Error displaying widget".

The quickstart runs headless (nbclient, as ``jupyter nbconvert --execute`` would), which stores every
widget's last state in the notebook's metadata; the saved copy is then opened in JupyterLab through
Chromium (trusted, as the operator's own saved notebook is) with no kernel holding those widgets
any more. The widget manager restores the panels from
the saved state, so the reader sees the panels as they last were (the engine closed, the state
locked), never their first "waiting" state, the error placeholder of a widget whose model is gone, or
a broken image.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from labkit import LabServer, OpenNotebook
from nbclient import NotebookClient
from nbkit import patched_jupyter_env
from playwright.async_api import expect

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
SAVED = "01-quickstart-executed.ipynb"
RENDER = 60_000  # ms: the restored widgets drawing


async def test_a_reopened_executed_quickstart_shows_its_panels(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path, tmp_path: Path
) -> None:
    nb = nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4)
    with patched_jupyter_env(tmp_path / "jupyter"):
        client = NotebookClient(
            nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
        )
        await client.async_execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(model["state"].get("_esm") for model in state.values()), "no panel state was saved"
    panels = {m["state"]["title"]: m["state"] for m in state.values() if m["state"].get("_esm")}
    # What the panels last showed: the quickstart ends with the engine closed and its state locked.
    assert {t: (p["feed_status"], p["locked"]) for t, p in panels.items()} == {
        "Resources": ("closed", True),
        "Plan diff": ("closed", True),
        "Activity": ("closed", True),
    }
    nbformat.write(nb, lab.root / SAVED)
    # Trusted, as a notebook the operator saved in their own JupyterLab is (an untrusted one shows
    # only the plain-text form of every rich output).
    lab.api(f"contents/{SAVED}/trust", method="POST")

    async with open_notebook(SAVED, height=3000, shot="reopened-quickstart") as opened:
        page = opened.page
        await expect(page.locator(".lnb-panel.lnb-resources").first).to_be_visible(timeout=RENDER)
        await expect(page.get_by_text("Loading widget")).to_have_count(0, timeout=RENDER)
        await expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        shown = page.locator(".lnb-panel")
        await expect(shown).to_have_count(3)
        assert await shown.evaluate_all("els => els.map(e => e.dataset.feed)") == ["closed"] * 3
        await expect(page.locator(".lnb-panel .lnb-locked")).to_have_count(3)
        await expect(page.locator(".lnb-resources").get_by_text("The state is locked.")).to_be_visible()
        broken = await page.locator("img").evaluate_all(
            "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.parentElement.outerHTML.slice(0, 400))"
        )
        assert broken == [], f"broken images on the reopened page: {broken}"
        # ipywidgets' "disconnected" glyph (a red chain-broken icon) is drawn before each widget view of
        # a page without a kernel; the views of ended panels hide it, their header says "closed".
        marked = page.locator(".jupyter-widgets-disconnected:has(.lnb-panel)")
        assert await marked.count() >= 4  # the dashboard's box and its three panels
        glyphs = await marked.evaluate_all("els => els.map(e => getComputedStyle(e, '::before').content)")
        assert set(glyphs) == {"none"}, f"the disconnected glyph still shows: {glyphs}"
        await page.screenshot(path=str(artifacts / "reopened-quickstart.png"), full_page=True)
    assert opened.page_errors == []
