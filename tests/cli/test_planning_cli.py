"""``legion plan ...``, ``legion diff`` and ``legion credentials`` in process."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


def test_plan_commands_build_a_plan(legion: Legion, state: str) -> None:
    s = ("--state", state)
    assert (
        legion(*s, "plan", "server", "add", "web-1", "--provider", "hetzner", "--location", "fsn1").code == 0
    )
    assert (
        legion(
            *s,
            "plan",
            "server",
            "add",
            "edge-1",
            "--provider",
            "hetzner",
            "--cluster",
            "edge",
            "--role",
            "satellite",
            "--server-type",
            "cx22",
            "--image",
            "debian-12",
        ).code
        == 0
    )
    assert legion(*s, "plan", "dns-zone", "add", "Example.org", "--provider", "hetzner").code == 0
    host = legion(*s, "plan", "dns-host", "add", "www", "--zone", "example.org", "--servers", "web-1,edge-1")
    assert host.out == "planned DNS host www in example.org -> web-1, edge-1\n"
    assert legion(*s, "plan", "domain", "add", "example.org", "--provider", "ovh").code == 0
    fw = legion(
        *s,
        "plan",
        "firewall",
        "add",
        "edge",
        "--provider",
        "hetzner",
        "--rule",
        "in tcp 22 0.0.0.0/0 ::/0",
        "--rule",
        "in icmp 0.0.0.0/0",
        "--servers",
        "web-1",
    )
    assert fw.code == 0, fw.err

    shown = json.loads(legion(*s, "--json", "plan", "show").out)
    assert shown["clusters"]["edge"]["servers"]["edge-1"]["role"] == "satellite"
    assert shown["clusters"]["default"]["servers"]["web-1"]["server_type"] == ""  # policy default
    assert shown["dns_hosts"]["www.example.org"]["servers"] == ["web-1", "edge-1"]
    assert [r["protocol"] for r in shown["firewalls"]["edge"]["rules"]] == ["tcp", "icmp"]

    human = legion(*s, "plan", "show").out
    assert "SERVERS" in human and "(policy)" in human and "www.example.org" in human
    assert "in tcp 22 0.0.0.0/0 ::/0; in icmp 0.0.0.0/0" in human

    diff = legion(*s, "diff")
    assert diff.code == 0
    assert "create     server       web-1" in diff.out and "server_type=(policy)" in diff.out
    assert diff.out.rstrip().endswith("6 create")  # 5 planned + the cluster's derived firewall set
    assert "legion-default-hetzner        hetzner   derived from cluster default" in diff.out
    # The open access is a warning line of its own, not words inside the row's detail.
    assert (
        "warning: firewall legion-default-hetzner: SSH (22) and the admin API (8443) are open to anywhere"
        in diff.out
    )
    derived_row = ["create", "firewall", "legion-default-hetzner"]
    detail = next(x for x in diff.out.splitlines() if x.split()[:3] == derived_row)
    assert "open to anywhere" not in detail
    fields = legion(*s, "diff", "--fields").out
    assert "FIELD" in fields and "PLANNED" in fields
    data = json.loads(legion(*s, "--json", "diff").out)
    assert data["counts"] == {"create": 6}
    derived = next(r for r in data["resources"] if r["name"] == "legion-default-hetzner")
    assert derived["note"] == "derived from cluster default"
    assert [w["code"] for w in derived["warnings"]] == ["open_access"]
    assert "legion plan access set" in derived["warnings"][0]["message"]
    assert all(r["warnings"] == [] for r in data["resources"] if r["kind"] != "firewall")

    # removal refuses while in use, then works
    refused = legion(*s, "plan", "dns-zone", "remove", "example.org")
    assert refused.code == 2 and "www.example.org" in refused.err and refused.err.count("\n") == 1
    assert legion(*s, "plan", "dns-host", "remove", "www", "--zone", "example.org").code == 0
    assert (
        legion(*s, "plan", "dns-zone", "remove", "example.org").out
        == "removed dns zone example.org from the plan\n"
    )
    assert legion(*s, "plan", "firewall", "remove", "edge").code == 0
    assert legion(*s, "plan", "domain", "remove", "example.org").code == 0
    assert legion(*s, "plan", "server", "remove", "web-1").code == 0
    assert legion(*s, "plan", "server", "remove", "edge-1").code == 0
    assert "the plan is empty" in legion(*s, "plan", "show").out
    assert legion(*s, "diff").out == "nothing planned, tracked or observed\n"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("plan", "server", "add", "web_1", "--provider", "hetzner"), 2, "invalid label"),
        (("plan", "server", "add", "web-1"), 2, "needs --provider"),
        (("plan", "server", "add", "web-1", "--provider", "aws"), 2, "unknown provider 'aws'"),
        (("plan", "server", "launch", "web-1"), 2, "invalid choice"),
        (("plan", "dns-host", "add", "www", "--zone", "nowhere.org", "--servers", "a"), 2, "not planned"),
        (("plan", "firewall", "add", "fw", "--provider", "ovh", "--rule", "in tcp"), 2, "needs a port"),
        (("plan", "server", "remove", "ghost"), 2, "not planned"),
    ],
)
def test_operator_mistakes_are_one_line(
    legion: Legion, state: str, args: tuple[str, ...], code: int, needle: str
) -> None:
    result = legion("--state", state, *args)
    assert result.code == code
    assert needle in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_credentials_set_and_show_never_print_secrets(legion: Legion, state: str, password: str) -> None:
    secret = "tok-CLI-SECRET-9f2"
    stored = legion(
        "--state",
        state,
        "--password-stdin",
        "credentials",
        "set",
        "hetzner",
        "--endpoint",
        "http://127.0.0.1:9/v1",
        stdin=f"{password}\n{json.dumps({'token': secret})}\n",
        password=None,
    )
    assert stored.code == 0, stored.err
    assert secret not in stored.out and "token" in stored.out
    shown = legion("--state", state, "--json", "credentials", "show")
    assert json.loads(shown.out) == [
        {"provider": "hetzner", "endpoint": "http://127.0.0.1:9/v1", "fields": ["token"]}
    ]
    assert secret not in legion("--state", state, "--json", "status").out
    assert secret not in legion("--state", state, "--json", "plan", "show").out
    deleted = legion("--state", state, "credentials", "delete", "hetzner")
    assert (deleted.code, deleted.out.strip()) == (0, "deleted hetzner credentials"), deleted.err
    assert json.loads(legion("--state", state, "--json", "credentials", "show").out) == []
    again = legion("--state", state, "credentials", "delete", "hetzner")
    assert again.code != 0 and again.err.count("\n") == 1 and "no hetzner credentials are stored" in again.err


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        ("", "no credentials on stdin"),
        ("{not json", "not JSON (line 1, column 2)"),
        ("[1]", "one JSON object"),
        ('{"application_key": "a"}', "ovh credentials lack application_secret, consumer_key"),
    ],
)
def test_bad_credentials_input(legion: Legion, state: str, stdin: str, needle: str) -> None:
    result = legion("--state", state, "credentials", "set", "ovh", stdin=stdin)
    assert result.code == 2
    assert needle in result.err and result.err.count("\n") == 1


def test_a_server_type_the_embedded_catalog_lacks_is_planned_with_a_plain_warning(
    legion: Legion, state: str
) -> None:
    s = ("--state", state)
    add = (*s, "plan", "server", "add", "web-1", "--provider", "hetzner", "--server-type", "cx999")
    added = legion(*add)
    assert added.code == 0, added.err  # no catalog read from Hetzner yet: the snapshot may be old
    planned, warned = added.out.splitlines()  # the operator hears it when planning, as diff says it
    assert planned.startswith("planned server web-1 on hetzner: type cx999")
    assert warned.startswith("warning: server web-1: server type cx999 is not in the hetzner catalog")
    shown = json.loads(legion("--json", *add).out)
    assert shown["name"] == "web-1" and [w["code"] for w in shown["warnings"]] == ["not_in_catalog"]
    assert "nearest: cx" in shown["warnings"][0]["message"]
    fine = json.loads(legion("--json", *add[:-1], "cx22").out)
    assert fine["server_type"] == "cx22" and fine["warnings"] == []
    assert legion(*add).code == 0  # back to cx999 for the diff below
    diff = legion(*s, "diff")
    assert diff.code == 0
    assert "server type cx999 is not in the hetzner catalog" in diff.out
    assert "nearest: cx" in diff.out
    assert "not priced, so left out of the totals: web-1 (see its warning)" in diff.out
    data = json.loads(legion(*s, "--json", "diff").out)
    (row,) = [r for r in data["resources"] if r["kind"] == "server"]
    assert [w["code"] for w in row["warnings"]] == ["not_in_catalog"]


def test_a_live_catalog_says_when_it_was_read_like_other_cli_times(
    legion: Legion, state: str, hetzner_block: dict[str, str], store_hetzner: Callable[..., None]
) -> None:
    store_hetzner(state, hetzner_block)
    shown = legion("--state", state, "catalog", "hetzner")
    assert shown.code == 0, shown.err
    header = shown.out.splitlines()[0]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.fullmatch(rf"hetzner catalog \(live, fetched {stamp}\)", header), header


def test_after_a_live_catalog_read_an_unknown_server_type_is_refused_with_the_nearest(
    legion: Legion, state: str, hetzner_block: dict[str, str], store_hetzner: Callable[..., None]
) -> None:
    store_hetzner(state, hetzner_block)
    assert legion("--state", state, "catalog", "hetzner").code == 0  # kept in the state
    s = ("--state", state, "plan", "server", "add", "web-1", "--provider", "hetzner")
    refused = legion(*s, "--server-type", "cx999")
    assert refused.code == 2, refused.err
    assert refused.err.startswith("legion: server type cx999 is not in the hetzner catalog; nearest: cx")
    assert refused.err.count("\n") == 1
    where = legion(*s, "--location", "fsn9")
    assert where.code == 2 and "location fsn9 is not in the hetzner catalog; nearest: fsn1" in where.err
    assert legion(*s, "--server-type", "cx22", "--location", "fsn1").code == 0
    shown = json.loads(legion("--state", state, "--json", "plan", "show").out)
    assert "cx999" not in json.dumps(shown)
