"""The state model: immutability, structural sharing, the JSON codec and migrations."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from legion_nb.engine import planning
from legion_nb.engine.state import model
from legion_nb.engine.state.edits import with_execution, with_tracked_server, without_tracked_server
from legion_nb.engine.state.model import (
    LegionState,
    StoredCredentials,
    decode_state,
    empty_state,
    encode_state,
    state_encoder,
    synthetic_state,
)
from legion_nb.errors import StateFormatError


def test_records_are_frozen() -> None:
    state = empty_state()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.schema_version = 2  # type: ignore[misc]


def test_round_trip_of_a_rich_state_is_exact() -> None:
    state = synthetic_state(40)
    state = dataclasses.replace(
        state,
        credentials={
            "hetzner": StoredCredentials(
                provider="hetzner", endpoint="http://127.0.0.1:1/v1", secrets={"token": "t0k"}
            )
        },
        catalogs={
            "hetzner": model.ProviderCatalog(
                provider="hetzner",
                fetched=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                data={"server_types": [{"name": "cx22", "price": "4.5"}]},
            )
        },
        tracked=dataclasses.replace(
            state.tracked,
            pending={
                "k1": model.CreatePending(
                    key="k1",
                    provider="ovh",
                    kind="server",
                    name="x",
                    started=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    labels={"legion/id": "1"},
                )
            },
        ),
    )
    payload = encode_state(state)
    again = decode_state(payload)
    assert again == state
    assert isinstance(again.billing[0].amount, Decimal)
    assert again.tracked.servers["node-00001"].created.tzinfo is not None
    assert encode_state(again) == payload  # stable bytes: sorted keys, compact


def test_the_state_encoder_writes_the_bytes_of_a_full_encode_across_edits() -> None:
    """The writer's encoder reuses the JSON of the records a commit kept; every state it encodes,
    including a decoded copy whose records are all new objects, gives encode_state's bytes."""
    state = synthetic_state(30)
    encode = state_encoder()
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    steps = [
        lambda s: planning.upsert_dns_zone(s, zone="new.example.org", provider="hetzner"),
        lambda s: planning.upsert_server(s, name="node-00003", provider="hetzner", server_type="cx32"),
        lambda s: with_tracked_server(
            s, dataclasses.replace(s.tracked.servers["node-00004"], ipv4="127.0.0.9", status="running")
        ),
        lambda s: with_execution(
            s,
            "node-00005",
            model.NodeExecution(
                operation="op-1", phase="install", status="running", started=when, updated=when
            ),
        ),
        lambda s: decode_state(encode_state(s)),  # another process's save, read back: no record is shared
        lambda s: without_tracked_server(s, "node-00006"),
        lambda s: planning.remove_dns_host(s, host="www3", zone="zone0.example.org"),
        lambda s: s,  # an unchanged state encodes alike twice
    ]
    assert encode(state) == encode_state(state)
    for step in steps:
        state = step(state)
        assert encode(state) == encode_state(state)
    earlier = synthetic_state(30)  # an encoder also takes any other state, records shared or not
    assert encode(earlier) == encode_state(earlier)


def test_encoding_is_compact_json_with_sorted_keys() -> None:
    payload = encode_state(empty_state())
    assert b" " not in payload
    data = json.loads(payload)
    assert list(data) == sorted(data)
    assert data["schema_version"] == model.SCHEMA_VERSION


def test_structural_sharing_rebuilds_only_the_changed_path() -> None:
    state = synthetic_state(200)
    after = planning.upsert_dns_zone(state, zone="new.example.org", provider="hetzner")
    assert after.tracked is state.tracked
    assert after.observed is state.observed
    assert after.scheme.clusters is state.scheme.clusters
    moved = planning.upsert_server(after, name="node-00000", provider="hetzner", server_type="cx32")
    changed = next(c for c in moved.scheme.clusters if "node-00000" in moved.scheme.clusters[c].servers)
    for name, cluster in moved.scheme.clusters.items():
        if name != changed:
            assert cluster is after.scheme.clusters[name]
    old = state.scheme.find_server("node-00000")
    assert old is not None and old[1].server_type == "cx22"  # the old state is untouched


def test_credentials_repr_never_shows_secrets() -> None:
    creds = StoredCredentials(provider="ovh", endpoint=None, secrets={"application_secret": "s3cr3t-value"})
    state = LegionState(credentials={"ovh": creds})
    assert "s3cr3t-value" not in repr(creds)
    assert "s3cr3t-value" not in repr(state)
    assert "application_secret" in repr(creds)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schema_version": 99}', "newer than this legion-nb"),
        (b'{"schema_version": "1"}', "invalid schema_version"),
        (b'{"schema_version": 1, "bogus": 1}', "unknown field in LegionState, found bogus"),
        (
            b'{"schema_version": 1, "scheme": {"dns_zones": {"a.org": {"zone": "a.org", "provider": "aws"}}}}',  # noqa: E501
            "state.scheme.dns_zones.a.org.provider: expected one of",
        ),
        (
            b'{"schema_version": 1, "billing": [{"provider": "ovh", "resource": "r", "period": "p", "amount": 1.5, "currency": "EUR"}]}',  # noqa: E501
            "state.billing.0.amount: expected a decimal number as a string",
        ),
        (
            b'{"schema_version": 1, "operations": [{"id": "1", "kind": "k", "started": "yesterday", "status": "running"}]}',  # noqa: E501
            "state.operations.0.started: expected an ISO 8601 time",
        ),
        (
            b'{"schema_version": 1, "scheme": {"dns_zones": {"a.org": {"provider": "ovh"}}}}',
            "field(s) zone in PlannedDnsZone",
        ),
    ],
)
def test_bad_payloads_give_one_line_format_errors(payload: bytes, needle: str) -> None:
    with pytest.raises(StateFormatError) as info:
        decode_state(payload)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_values_deep_in_collections_are_named_by_path() -> None:
    state = synthetic_state(3)
    data = json.loads(encode_state(state))
    data["tracked"]["servers"]["node-00001"]["labels"]["legion/id"] = 7
    with pytest.raises(
        StateFormatError, match=r"^state\.tracked\.servers\.node-00001\.labels\.legion/id: expected a string"
    ):
        decode_state(json.dumps(data).encode())
    data = json.loads(encode_state(state))
    data["tracked"]["servers"]["node-00002"]["ssh_keys"][0]["fingerprint"] = None
    with pytest.raises(
        StateFormatError, match=r"servers\.node-00002\.ssh_keys\.0\.fingerprint: expected a string"
    ):
        decode_state(json.dumps(data).encode())
    data = json.loads(encode_state(state))
    data["tracked"]["servers"]["node-00000"]["execution"] = ["not", "a", "record", "at", "all", "x", "y"]
    with pytest.raises(
        StateFormatError, match=r"node-00000\.execution: expected an object \(NodeExecution\)"
    ):
        decode_state(json.dumps(data).encode())


def test_missing_fields_take_their_defaults() -> None:
    state = decode_state(
        b'{"schema_version": 1, "scheme": {"dns_zones": {"a.org": {"zone": "a.org", "provider": "ovh"}}}}'
    )
    assert state.scheme.dns_zones["a.org"].provider == "ovh"
    assert state.tracked == model.Tracked()


def test_migrations_run_in_order_and_bump_the_version() -> None:
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        data["scheme"] = {"domains": {d: {"name": d, "provider": "ovh"} for d in data.pop("legacy_domains")}}
        return data

    def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("operations", [])
        return data

    old = b'{"schema_version": 1, "legacy_domains": ["example.org"]}'
    state = decode_state(old, migrations={1: v1_to_v2, 2: v2_to_v3})
    assert state.schema_version == 3
    assert state.scheme.domains["example.org"].provider == "ovh"


def test_a_gap_in_the_migrations_is_refused() -> None:
    with pytest.raises(StateFormatError, match="no migration from state schema version 2"):
        decode_state(b'{"schema_version": 1}', migrations={1: lambda d: d, 3: lambda d: d})


def test_synthetic_state_has_the_asked_size() -> None:
    state = synthetic_state(120)
    assert len(state.scheme.servers()) == 120
    assert len(state.tracked.servers) == 120
    assert sum(len(o.servers) for o in state.observed.values()) == 120
