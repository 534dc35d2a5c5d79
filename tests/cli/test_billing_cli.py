"""``legion diff`` carries the plan's monthly cost; ``legion billing`` reads the sandbox's figures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from legion_nb.cli.planning import render_diff
from legion_nb.emulators import hetzner, ovh, scaleway
from legion_nb.emulators.httpkit import serve_in_thread
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.providers.catalog import embedded_catalog, resolve_server_choice

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


def test_diff_carries_the_monthly_cost_of_three_new_servers(legion: Legion, state: str) -> None:
    s = ("--state", state)
    planned = (("h-1", "hetzner", "cx22", "fsn1"), ("s-1", "scaleway", "", ""), ("o-1", "ovh", "", ""))
    expected = Decimal(0)
    for name, provider, server_type, location in planned:
        args = ["plan", "server", "add", name, "--provider", provider]
        if server_type:
            args += ["--server-type", server_type, "--location", location]
        assert legion(*s, *args).code == 0
        choice = resolve_server_choice(
            embedded_catalog(provider), server_type=server_type or None, location=location or None
        )
        assert choice.price is not None
        expected += choice.price.monthly
    cost = json.loads(legion(*s, "--json", "diff").out)["cost"]
    (eur,) = cost["currencies"]
    assert (eur["currency"], Decimal(eur["now"])) == ("EUR", Decimal(0))
    assert Decimal(eur["change"]) == Decimal(eur["planned"]) == expected
    assert {x["name"] for x in cost["servers"]} == {"h-1", "s-1", "o-1"} and cost["unpriced"] == []
    human = legion(*s, "diff").out
    amount = f"{expected.quantize(Decimal('0.01'))} EUR/month"  # the catalog's prices have 2 decimals' worth
    assert "MONTHLY COST" in human and f"+{amount}" in human and "0.00 EUR/month" in human
    assert f"{expected}" not in human.replace(amount, ""), "an exact decimal string leaked into human output"


def test_diff_prints_a_saving_as_negative_money_with_its_currency() -> None:
    row = {"action": "delete", "kind": "server", "name": "h-1", "provider": "hetzner", "fields": []}
    cost = {"currency": "EUR", "now": "18.2400", "planned": "14.4500", "change": "-3.7900"}
    data = {"resources": [row], "cost": {"currencies": [cost], "unpriced": []}, "counts": {"delete": 1}}
    lines = render_diff(data).splitlines()
    head = lines.index("MONTHLY COST")
    assert lines[head + 1].split() == ["NOW", "PLANNED", "CHANGE"]
    assert lines[head + 2].split() == ["18.24", "EUR/month", "14.45", "EUR/month", "-3.79", "EUR/month"]
    assert "3.7900" not in "\n".join(lines)


@pytest.fixture
def sandbox() -> Iterator[dict[str, dict[str, str]]]:
    """The three emulators in threads, with 40 days of back-dated billing history."""
    with ExitStack() as stack:
        blocks = {}
        for name, module in (("hetzner", hetzner), ("scaleway", scaleway), ("ovh", ovh)):
            world = SandboxWorld(
                seed=9, timing=Timing(action_seconds=0.05, boot_seconds=0.05), history_days=40
            )
            served = stack.enter_context(serve_in_thread(module.create_app, world))
            blocks[name] = {"url": served.url, **served.emulator.credentials}
        yield blocks


def test_billing_rows_for_each_provider_reconciliation_and_exports(
    legion: Legion, state: str, sandbox: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    s = ("--state", state)
    for provider, block in sandbox.items():
        secrets = {k: v for k, v in block.items() if k != "url"}
        result = legion(
            *s, "credentials", "set", provider, "--endpoint", block["url"], stdin=json.dumps(secrets)
        )
        assert result.code == 0, result.err
    hetzner_block = sandbox["hetzner"]
    created = httpx.post(
        f"{hetzner_block['url']}/servers",
        headers={"Authorization": f"Bearer {hetzner_block['token']}"},
        json={"name": "stray", "server_type": "cx22", "image": "debian-12", "location": "fsn1"},
    )
    assert created.status_code == 201
    address = httpx.post(
        f"{hetzner_block['url']}/floating_ips",
        headers={"Authorization": f"Bearer {hetzner_block['token']}"},
        json={"type": "ipv4", "home_location": "fsn1", "name": "left-vip"},
    )
    assert address.status_code == 201

    result = legion(*s, "--json", "billing")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert isinstance(rows, list) and {r["provider"] for r in rows} == {"hetzner", "scaleway", "ovh"}
    for row in rows:
        assert {"currency", "provider", "resource", "start", "end", "source"} <= set(row)
        Decimal(row["billed_cost"])
    frame = pd.DataFrame(rows)
    assert len(frame) == len(rows)

    by = json.loads(legion(*s, "--json", "billing", "--by", "provider", "--no-collect").out)
    assert {r["provider"] for r in by} == {"hetzner", "scaleway", "ovh"}
    human = legion(*s, "billing", "--by", "provider", "--no-collect").out
    assert "BILLED COST" in human and "hetzner" in human
    days = legion(*s, "billing", "--by", "day", "--no-collect").out
    assert "PART" in days.splitlines()[0] and " day " in days, days  # a day's estimate, or unattributed

    reconciliation = json.loads(legion(*s, "--json", "billing", "reconcile", "--no-collect").out)
    assert [r["resource_name"] for r in reconciliation if r["orphan"]] == ["stray"]
    kinds = {r["kind"] for r in reconciliation}
    assert "floating_ip" in kinds
    table = legion(*s, "billing", "reconcile", "--no-collect").out
    cells = {cell for line in table.splitlines()[1:] for cell in line.split()}
    assert kinds - {""} <= cells  # every kind whole in its column, none cut with an ellipsis
    forecast = json.loads(legion(*s, "--json", "billing", "forecast", "--no-collect").out)
    assert {r["provider"] for r in forecast} == {"hetzner", "scaleway", "ovh"}

    for fmt in ("csv", "parquet"):
        out = tmp_path / f"ledger.{fmt}"
        done = legion(*s, "--json", "billing", "export", "--format", fmt, "--out", str(out), "--no-collect")
        assert done.code == 0, done.err
        assert json.loads(done.out)["rows"] == len(rows)
    back = pd.read_parquet(tmp_path / "ledger.parquet")
    assert sum(back["billed_cost"]) == sum(Decimal(r["billed_cost"]) for r in rows)

    bad = legion(*s, "billing", "--month", "Nov", "--no-collect")
    assert bad.code != 0 and "YYYY-MM" in bad.err and bad.err.count("\n") == 1
    missing = legion(*s, "billing", "export", "--format", "csv", "--out", str(tmp_path / "no" / "x.csv"))
    assert missing.code != 0 and "does not exist" in missing.err
