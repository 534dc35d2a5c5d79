"""The browser tests' own rule: a missing Chromium skips on a developer machine, fails under CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from labkit import chromium_or_skip


def test_a_present_chromium_is_used(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("")
    assert chromium_or_skip(browser) == browser


def test_a_missing_chromium_fails_under_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        chromium_or_skip(tmp_path / "missing")


def test_a_missing_chromium_skips_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is missing"):
        chromium_or_skip(tmp_path / "missing")
