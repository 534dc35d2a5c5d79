"""``legion sandbox serve`` as operators run it: a subprocess, one JSON line, real URLs, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import ovh  # type: ignore[import-untyped]
import ovh.client  # type: ignore[import-untyped]
import pytest
from hcloud import Client

TIMEOUT = 60


def _serve(*args: str) -> subprocess.Popen[str]:
    """``legion sandbox serve ARGS`` in a child process, its output piped unbuffered."""
    return subprocess.Popen(
        [sys.executable, "-m", "legion_nb", "sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, dict[str, str]]]]:
    process = _serve("--json", "--seed", "42")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"no endpoints line; stderr: {process.stderr.read() if process.stderr else ''}"
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)


def test_serve_prints_endpoints_that_answer_and_stops_cleanly_on_sigterm(
    served: tuple[subprocess.Popen[str], dict[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    process, endpoints = served
    assert list(endpoints) == ["hetzner", "scaleway", "ovh"]
    assert set(endpoints["hetzner"]) == {"url", "token"}
    assert set(endpoints["scaleway"]) == {
        "url",
        "access_key",
        "secret_key",
        "project_id",
        "organization_id",
        "zone",
    }
    assert set(endpoints["ovh"]) == {
        "url",
        "application_key",
        "application_secret",
        "consumer_key",
        "service_name",
    }
    for block in endpoints.values():
        assert block["url"].startswith("http://127.0.0.1:")
    assert endpoints["hetzner"]["url"].endswith("/v1")
    assert endpoints["ovh"]["url"].endswith("/1.0")

    hetzner = Client(token=endpoints["hetzner"]["token"], api_endpoint=endpoints["hetzner"]["url"])
    assert {loc.name for loc in hetzner.locations.get_all()} >= {"fsn1", "nbg1"}

    scw = endpoints["scaleway"]
    response = httpx.get(
        f"{scw['url']}/instance/v1/zones/{scw['zone']}/servers", headers={"X-Auth-Token": scw["secret_key"]}
    )
    assert response.status_code == 200
    assert response.json() == {"servers": []}

    o = endpoints["ovh"]
    assert httpx.get(f"{o['url']}/auth/time").status_code == 200
    # python-ovh only knows named endpoints: register the sandbox URL under a name of our own.
    monkeypatch.setitem(ovh.client.ENDPOINTS, "legion-sandbox", o["url"])
    client = ovh.Client(
        endpoint="legion-sandbox",
        application_key=o["application_key"],
        application_secret=o["application_secret"],
        consumer_key=o["consumer_key"],
    )
    assert client.get(f"/cloud/project/{o['service_name']}/instance") == []

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0
    assert process.stdout is not None and process.stdout.read() == "", "exactly one line on stdout"


def test_serve_sigint_also_exits_zero(
    served: tuple[subprocess.Popen[str], dict[str, dict[str, str]]],
) -> None:
    process, _ = served
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=TIMEOUT) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "10.1.2.3"], "outside 127.0.0.0/8"),
        (["--host", "0.0.0.0"], "outside 127.0.0.0/8"),
        (["--fault-rate", "1.5"], "--fault-rate"),
        (["--latency-ms", "-3"], "--latency-ms"),
        (["--node-history-hours", "-1"], "--node-history-hours"),
        (["--node-history-hours", "nan"], "--node-history-hours"),
        (["--node-page-limit", "0"], "--node-page-limit"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "legion_nb", "sandbox", "serve", "--json", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_serve_fault_rate_reaches_the_emulators() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "legion_nb", "sandbox", "serve", "--json", "--seed", "3", "--fault-rate", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        hetzner = json.loads(process.stdout.readline())["hetzner"]
        outcomes: list[int | str] = []
        with httpx.Client(headers={"Authorization": f"Bearer {hetzner['token']}"}) as client:
            for _ in range(12):
                try:
                    outcomes.append(client.get(f"{hetzner['url']}/locations").status_code)
                except httpx.TransportError:
                    outcomes.append("dropped")
        assert set(outcomes) <= {429, 500, 502, 503, "dropped"}, outcomes
        assert len(set(outcomes)) > 1, "a mix of fault kinds"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)


def test_serve_says_goodbye_on_ctrl_c_in_text_mode() -> None:
    process = _serve("--no-nodes", "--seed", "5")
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("sandbox serving (seed 5): hetzner http://127.0.0.1:")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        assert out == "sandbox stopped: its servers and nodes are gone\n" and err == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
