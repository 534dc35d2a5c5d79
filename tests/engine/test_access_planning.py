"""Planned operator access: strict CIDR validation, set/clear, and its way through the codec."""

from __future__ import annotations

import orjson
import pytest

from legion_nb.engine import planning
from legion_nb.engine.state.model import (
    SCHEMA_VERSION,
    LegionState,
    PlannedAccess,
    Scheme,
    decode_state,
    empty_state,
    encode_state,
)
from legion_nb.engine.state.validation import normalize_operator_cidrs, validate_scheme
from legion_nb.errors import StateFormatError, ValidationError


def test_cidrs_are_canonical_ipv4_first_and_bare_addresses_are_hosts() -> None:
    got = normalize_operator_cidrs([" 2001:DB8::/48", "198.51.100.7", "10.0.0.0/8", "2001:db8:1::1"])
    assert got == ("10.0.0.0/8", "198.51.100.7/32", "2001:db8::/48", "2001:db8:1::1/128")


@pytest.mark.parametrize(
    ("cidrs", "message"),
    [
        ([], "needs at least one CIDR"),
        (["example.org"], "operator CIDR 'example.org' is not a CIDR like 203.0.113.7/32"),
        (["198.51.100.7/33"], "is not a CIDR"),
        (["198.51.100.7/24"], "has host bits set: write 198.51.100.0/24 for the whole network"),
        (["198.51.100.7 /32"], "is not a CIDR"),
        ([""], "is not a CIDR"),
        (["198.51.100.7", "198.51.100.7/32"], "operator CIDR 198.51.100.7/32 is listed twice"),
        (["2001:db8::/32", "2001:0DB8:0::/32"], "operator CIDR 2001:db8::/32 is listed twice"),
        (["127.0.0.1/32", "::1"], "operator CIDRs are all loopback"),
        (["224.0.0.1"], "224.0.0.1/32 is no address an operator connects from"),
        (["0.0.0.0"], "0.0.0.0/32 is no address an operator connects from"),
        ("198.51.100.7/32", "a list of CIDRs, not one string"),
        ([7], "operator CIDR 7 is not a CIDR"),
    ],
)
def test_nonsense_is_one_line_and_changes_nothing(cidrs: object, message: str) -> None:
    before = planning.set_operator_cidrs(empty_state(), cidrs=["198.51.100.7"])
    with pytest.raises(ValidationError, match=message) as info:
        planning.set_operator_cidrs(before, cidrs=cidrs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert before.scheme.access.operator_cidrs == ("198.51.100.7/32",)


def test_loopback_beside_a_real_address_is_allowed() -> None:
    state = planning.set_operator_cidrs(empty_state(), cidrs=["127.0.0.1", "203.0.113.0/24"])
    assert state.scheme.access.operator_cidrs == ("127.0.0.1/32", "203.0.113.0/24")


def test_set_replaces_clear_forgets_and_nothing_else_changes() -> None:
    base = planning.upsert_server(empty_state(), name="web-1", provider="hetzner")
    first = planning.set_operator_cidrs(base, cidrs=["198.51.100.7"])
    second = planning.set_operator_cidrs(first, cidrs=["203.0.113.0/24", "2001:db8::/48"])
    assert second.scheme.access == PlannedAccess(("203.0.113.0/24", "2001:db8::/48"))
    assert second.scheme.clusters is base.scheme.clusters and second.tracked is base.tracked
    cleared = planning.clear_operator_cidrs(second)
    assert cleared.scheme.access == PlannedAccess()
    assert planning.clear_operator_cidrs(cleared) is cleared  # clearing nothing is no change


def test_access_round_trips_through_the_codec() -> None:
    state = planning.set_operator_cidrs(empty_state(), cidrs=["198.51.100.7", "2001:db8::/48"])
    payload = encode_state(state)
    assert orjson.loads(payload)["scheme"]["access"] == {
        "operator_cidrs": ["198.51.100.7/32", "2001:db8::/48"]
    }
    assert decode_state(payload) == state
    assert decode_state(encode_state(empty_state())) == empty_state()


def test_a_version_1_state_migrates_to_no_planned_access() -> None:
    old = b'{"schema_version": 1, "scheme": {"dns_zones": {"a.org": {"zone": "a.org", "provider": "ovh"}}}}'
    state = decode_state(old)
    assert state.schema_version == SCHEMA_VERSION == 2
    assert state.scheme.access == PlannedAccess() and "a.org" in state.scheme.dns_zones
    assert decode_state(b'{"schema_version": 1}') == LegionState()


def test_a_state_from_a_newer_legion_is_refused_by_version_not_by_field() -> None:
    with pytest.raises(StateFormatError, match="newer than this legion-nb knows"):
        decode_state(b'{"schema_version": 3}')


def test_validate_scheme_checks_the_planned_access() -> None:
    validate_scheme(planning.set_operator_cidrs(empty_state(), cidrs=["198.51.100.7"]).scheme)
    with pytest.raises(ValidationError, match="is not a CIDR"):
        validate_scheme(Scheme(access=PlannedAccess(("not-a-cidr",))))
    with pytest.raises(ValidationError, match="canonical order"):
        validate_scheme(Scheme(access=PlannedAccess(("2001:db8::/48", "198.51.100.7/32"))))
