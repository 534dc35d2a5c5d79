"""Frozen records hold read-only mappings: built in code, decoded from the state, or from a provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from legion_nb.engine.state import model
from legion_nb.engine.state.model import ObservedServer, PlannedCluster, PlannedServer
from legion_nb.providers.contract import ProviderCredentials
from legion_nb.providers.records import Server, ServerSpec


def assert_read_only(mapping: Mapping[str, Any]) -> None:
    before = dict(mapping)
    with pytest.raises(TypeError, match="read-only"):
        mapping["intruder"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        mapping.update(intruder="x")  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="read-only"):
        mapping.pop(next(iter(mapping), "intruder"))  # type: ignore[attr-defined]
    assert dict(mapping) == before


def test_a_record_keeps_its_own_copy_of_the_dict_it_was_given() -> None:
    labels = {"legion/managed": "true"}
    observed = ObservedServer(provider_id="1", name="web-1", status="running", labels=labels)
    labels["legion/managed"] = "false"
    assert observed.labels == {"legion/managed": "true"}
    assert_read_only(observed.labels)
    servers = {"web-1": PlannedServer(name="web-1", provider="hetzner", server_type="cx22", location="fsn1")}
    cluster = PlannedCluster(name="c", servers=servers)
    servers.clear()
    assert list(cluster.servers) == ["web-1"]
    assert_read_only(cluster.servers)


def test_replace_and_equality_work_as_with_dicts() -> None:
    observed = ObservedServer(provider_id="1", name="web-1", status="running", labels={"a": "1"})
    changed = dataclasses.replace(observed, labels={**observed.labels, "b": "2"})
    assert changed.labels == {"a": "1", "b": "2"} and observed.labels == {"a": "1"}
    assert dataclasses.replace(changed) == changed
    assert_read_only(changed.labels)


def test_a_decoded_state_holds_read_only_mappings_all_the_way_down() -> None:
    state = model.decode_state(model.encode_state(model.synthetic_state(6)))
    assert state == model.synthetic_state(6)
    assert_read_only(state.tracked.servers)
    assert_read_only(state.scheme.clusters)
    assert_read_only(next(iter(state.tracked.servers.values())).labels)
    assert_read_only(next(iter(state.observed.values())).servers)
    assert model.encode_state(state) == model.encode_state(model.synthetic_state(6))


def test_provider_records_and_credentials_hold_read_only_mappings() -> None:
    server = Server(
        provider="hetzner",
        id="1",
        name="web-1",
        status="running",
        provider_status="running",
        labels={"legion/managed": "true"},
    )
    spec = ServerSpec(name="web-1", server_type="cx22", location="fsn1", image="debian-12", labels={"k": "v"})
    credentials = ProviderCredentials("hetzner", "http://127.0.0.1:1", secrets={"token": "t"}, options={})
    for mapping in (server.labels, spec.labels, credentials.secrets, credentials.options):
        assert_read_only(mapping)
    assert dict(server.labels) == {"legion/managed": "true"} and credentials.secret("token") == "t"
