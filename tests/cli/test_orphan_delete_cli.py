"""``legion orphan delete``: a firewall made with hcloud and Legion's labels shows in ``legion diff``
as an orphan whose note names the id to pass; the command asks before deleting, refuses someone
else's firewall in one line (exit 2), and the diff no longer shows the one it deleted."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hcloud import Client

from legion_nb.providers.ownership import OwnershipLabels

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py
StoreHetzner = Callable[[str, dict[str, str]], None]


def _orphans(legion: Legion, state: str) -> dict[str, str]:
    diffed = legion("--state", state, "--json", "diff")
    assert diffed.code == 0, diffed.err
    return {r["name"]: r["note"] for r in json.loads(diffed.out)["resources"] if r["action"] == "orphan"}


def test_orphan_delete_deletes_what_the_diff_names_and_refuses_the_rest(
    legion: Legion, state: str, hetzner_block: dict[str, str], store_hetzner: StoreHetzner
) -> None:
    store_hetzner(state, hetzner_block)
    client = Client(token=hetzner_block["token"], api_endpoint=hetzner_block["url"])
    ours = client.firewalls.create(name="left-fw", labels=OwnershipLabels.new().as_labels()).firewall
    theirs = client.firewalls.create(name="their-fw", labels={"legion/managed": "true"}).firewall
    assert legion("--state", state, "refresh").code == 0

    orphans = _orphans(legion, state)
    assert (
        orphans["left-fw"].endswith(f"orphan_delete takes firewall/{ours.id}") and "their-fw" not in orphans
    )

    unconfirmed = legion("--state", state, "orphan", "delete", "hetzner", f"firewall/{ours.id}")
    assert unconfirmed.code == 2 and "confirm, or pass --yes" in unconfirmed.err
    refused = legion("--state", state, "orphan", "delete", "hetzner", f"firewall/{theirs.id}", "--yes")
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1
    assert "only part of Legion's labels" in refused.err
    unknown = legion("--state", state, "orphan", "delete", "hetzner", "firewall/404", "--yes")
    assert unknown.code == 2 and "hetzner lists no such firewall" in unknown.err

    done = legion("--state", state, "orphan", "delete", "hetzner", f"firewall/{ours.id}", "--yes")
    assert done.code == 0, done.err
    assert "delete orphan hetzner" in done.out and "left-fw" in done.out
    assert "left-fw" not in _orphans(legion, state), "gone from the diff without a refresh"
    assert [f.name for f in client.firewalls.get_all()] == ["their-fw"]
