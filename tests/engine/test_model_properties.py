"""Property tests: whatever a sequence of planning actions builds survives encode/decode unchanged."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from legion_nb.engine import planning
from legion_nb.engine.state.model import LegionState, decode_state, empty_state, encode_state, state_encoder
from legion_nb.engine.state.validation import validate_scheme
from legion_nb.errors import ValidationError

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
provider = st.sampled_from(["hetzner", "ovh", "scaleway"])
choice = st.one_of(st.just(""), st.from_regex(r"[a-z0-9][a-z0-9.-]{0,8}", fullmatch=True))

action = st.one_of(
    st.tuples(st.just("server"), label, provider, choice, st.sampled_from([None, "prod", "edge"])),
    st.tuples(st.just("zone"), label, provider),
    st.tuples(st.just("host"), label, label, st.lists(label, max_size=3)),
    st.tuples(st.just("remove_server"), label),
    st.tuples(st.just("remove_zone"), label),
)


def apply(state: LegionState, step: tuple[Any, ...]) -> LegionState:
    kind = step[0]
    if kind == "server":
        return planning.upsert_server(state, name=step[1], provider=step[2], image=step[3], cluster=step[4])
    if kind == "zone":
        return planning.upsert_dns_zone(state, zone=f"{step[1]}.example.org", provider=step[2])
    if kind == "host":
        return planning.upsert_dns_host(state, host=step[1], zone=f"{step[2]}.example.org", servers=step[3])
    if kind == "remove_server":
        return planning.remove_server(state, name=step[1])
    return planning.remove_dns_zone(state, zone=f"{step[1]}.example.org")


@settings(max_examples=150, deadline=None)
@given(st.lists(action, max_size=25))
def test_any_plan_round_trips_and_stays_valid(steps: list[tuple[Any, ...]]) -> None:
    state = empty_state()
    for step in steps:
        with contextlib.suppress(ValidationError):  # a refused action changes nothing
            state = apply(state, step)
    validate_scheme(state.scheme)
    assert decode_state(encode_state(state)) == state
    assert encode_state(decode_state(encode_state(state))) == encode_state(state)


@settings(max_examples=100, deadline=None)
@given(st.lists(action, max_size=25))
def test_the_state_encoder_follows_any_plan_byte_for_byte(steps: list[tuple[Any, ...]]) -> None:
    state = empty_state()
    encode = state_encoder()
    assert encode(state) == encode_state(state)
    for step in steps:
        with contextlib.suppress(ValidationError):
            state = apply(state, step)
        assert encode(state) == encode_state(state)
