"""The node actor's server records as functions: what a provider report changes in a tracked server,
when that costs a state write, and which catalog choice a role gets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import pytest

from legion_nb.engine.diff import diff
from legion_nb.engine.providers_service import record_inventory
from legion_nb.engine.resources.node import (
    observed_server,
    record_observed,
    server_choice,
    tracked_server_from,
)
from legion_nb.engine.state.edits import with_tracked_server
from legion_nb.engine.state.model import LegionState, TrackedServer, empty_state
from legion_nb.providers.catalog import UnknownServerTypeError, embedded_catalog
from legion_nb.providers.records import Server

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
R = TypeVar("R")


class CountingState:
    """A ``StatePort`` over a plain value that counts its writes."""

    def __init__(self, state: LegionState) -> None:
        self.state = state
        self.writes: list[str] = []

    async def mutate(self, fn: Callable[[LegionState], tuple[LegionState, R]], *, reason: str) -> R:
        self.state, result = fn(self.state)
        self.writes.append(reason)
        return result


def report(**changes: object) -> Server:
    base = Server("hetzner", "11", "n1", "running", "running", ipv4="127.0.0.5", server_type="cx22")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_report_updates_addresses_and_status_and_keeps_what_it_does_not_name() -> None:
    record = TrackedServer("n1", "hetzner", "11", NOW, server_type="cx22", location="fsn1", image="debian-12")
    fresh = observed_server(record, report(status="off", ipv4=None, ipv6="::5", location=None))
    assert (fresh.status, fresh.ipv4, fresh.ipv6) == ("off", None, "::5")
    assert (fresh.server_type, fresh.location, fresh.image) == ("cx22", "fsn1", "debian-12")
    assert fresh.provider_id == "11" and fresh.created == NOW


def test_tracked_server_from_keeps_every_reported_fact_under_the_given_name() -> None:
    reported = report(labels={"legion-id": "L1"})
    record = tracked_server_from(reported, "hetzner", cluster="alpha", role="cluster", name="n1")
    assert (record.name, record.provider_id, record.cluster, record.role) == ("n1", "11", "alpha", "cluster")
    assert (record.ipv4, record.server_type, record.status) == ("127.0.0.5", "cx22", "running")
    assert dict(record.labels) == {"legion-id": "L1"}


async def test_record_observed_writes_only_news_about_a_tracked_server() -> None:
    tracked = tracked_server_from(report(), "hetzner", cluster="alpha", role="cluster")
    state = CountingState(with_tracked_server(empty_state(), tracked))
    await record_observed(state, "n1", report())
    assert state.writes == []
    await record_observed(state, "n1", report(ipv4="127.0.0.6"))
    assert state.writes == ["server n1 is running"]
    assert state.state.tracked.servers["n1"].ipv4 == "127.0.0.6"
    await record_observed(state, "gone", report(name="gone"))
    assert state.writes == ["server n1 is running"]


async def test_an_actor_read_that_moves_the_addresses_updates_the_observation_and_dates_it() -> None:
    """The actor reads new addresses after a refresh: the observation takes them with the read's
    own ``seen`` (so the diff shows no address drift until the next refresh), the provider's
    ``refreshed`` stays the listing's, and a read that changes nothing writes nothing."""
    tracked = tracked_server_from(report(ipv6="::5"), "hetzner", cluster="alpha", role="cluster")
    start = with_tracked_server(empty_state(), tracked)
    listed, _ = record_inventory(start, "hetzner", [report(ipv6="::5")], [], [])
    refreshed = listed.observed["hetzner"].refreshed
    state = CountingState(listed)

    await record_observed(state, "n1", report(ipv4="127.0.0.6", ipv6=None))

    observed = state.state.observed["hetzner"]
    seen = observed.servers["11"]
    assert (seen.status, seen.ipv4, seen.ipv6) == ("running", "127.0.0.6", None)
    assert observed.refreshed == refreshed and refreshed is not None
    assert listed.observed["hetzner"].servers["11"].seen == refreshed  # the listing's, before the read
    assert seen.seen is not None and seen.seen > refreshed
    (row,) = [r for r in diff(state.state).resources if r.name == "n1"]
    drift = [f.field for f in row.fields if f.observed is not None and f.tracked != f.observed]
    assert drift == [], row.fields  # the addresses read are the addresses observed
    writes = list(state.writes)
    await record_observed(state, "n1", report(ipv4="127.0.0.6", ipv6=None))
    assert state.writes == writes and state.state.observed["hetzner"].servers["11"] is seen


def test_server_choice_follows_the_role_profile_and_validates_what_is_given() -> None:
    catalog = embedded_catalog("hetzner")
    node = server_choice(catalog, "cluster")
    assert catalog.image(node.image.id) is not None and node.server_type.name
    assert server_choice(catalog, "satellite", location=node.location.name).location == node.location
    with pytest.raises(UnknownServerTypeError, match="no-such-type"):
        server_choice(catalog, "cluster", server_type="no-such-type")
