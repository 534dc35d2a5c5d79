"""``legion plan access set|clear``: the operator's CIDRs in the plan, in ``plan show`` and ``diff``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


def test_access_is_set_shown_diffed_and_cleared(legion: Legion, state: str) -> None:
    s = ("--state", state)
    assert legion(*s, "plan", "server", "add", "web-1", "--provider", "hetzner").code == 0
    done = legion(
        *s, "plan", "access", "set", "--operator-cidr", "2001:db8::/48", "--operator-cidr", "198.51.100.7"
    )
    assert done.code == 0, done.err
    assert (
        done.out == "SSH and the admin API open only to 198.51.100.7/32, 2001:db8::/48 (see 'legion diff')\n"
    )

    shown = json.loads(legion(*s, "--json", "plan", "show").out)
    assert shown["access"] == {"operator_cidrs": ["198.51.100.7/32", "2001:db8::/48"]}
    human = legion(*s, "plan", "show").out
    assert "OPERATOR ACCESS (SSH, ADMIN API)" in human and "2001:db8::/48" in human

    diff = legion(*s, "diff").out
    line = next(x for x in diff.splitlines() if "legion-default-hetzner" in x)
    assert line.split()[:4] == ["create", "firewall", "legion-default-hetzner", "hetzner"]
    assert "derived from cluster default; operator_cidrs=198.51.100.7/32,2001:db8::/48" in line
    rows = {r["name"]: r for r in json.loads(legion(*s, "--json", "diff").out)["resources"]}
    fields = {f["field"]: f for f in rows["legion-default-hetzner"]["fields"]}
    assert fields["operator_cidrs"]["planned"] == "198.51.100.7/32,2001:db8::/48"
    assert rows["legion-default-hetzner"]["warnings"] == []  # access planned: nothing to warn about
    assert "warning:" not in diff

    cleared = legion(*s, "plan", "access", "clear")
    assert cleared.code == 0 and cleared.out.startswith("no operator CIDRs planned")
    assert json.loads(legion(*s, "--json", "plan", "show").out)["access"] == {"operator_cidrs": []}
    reopened = legion(*s, "diff").out
    assert "operator_cidrs=0.0.0.0/0,::/0" in reopened
    assert "warning: firewall legion-default-hetzner: SSH (22) and the admin API (8443) are open" in reopened


def test_bad_access_is_a_one_line_error_and_keeps_the_plan(legion: Legion, state: str) -> None:
    s = ("--state", state)
    assert legion(*s, "plan", "access", "set", "--operator-cidr", "203.0.113.0/24").code == 0
    for bad in ("example.org", "203.0.113.7/24", "127.0.0.1"):
        result = legion(*s, "plan", "access", "set", "--operator-cidr", bad)
        assert result.code != 0 and result.out == ""
        assert len(result.err.strip().splitlines()) == 1 and "operator CIDR" in result.err, result.err
    twice = legion(*s, "plan", "access", "set", "--operator-cidr", "::1/128", "--operator-cidr", "0:0::1")
    assert twice.code != 0 and "listed twice" in twice.err
    missing = legion(*s, "plan", "access", "set")
    assert missing.code != 0 and "--operator-cidr" in missing.err
    shown = json.loads(legion(*s, "--json", "plan", "show").out)
    assert shown["access"] == {"operator_cidrs": ["203.0.113.0/24"]}
