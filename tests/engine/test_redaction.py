"""The redaction layer: what it scrubs, in which forms, and what it leaves alone."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator

import pytest

from legion_nb.engine import redaction
from legion_nb.engine.api import engine_api
from legion_nb.engine.redaction import REDACTED, RedactingFilter, Redactor, secret_values
from legion_nb.engine.state.model import (
    ClusterMaterial,
    DeploymentMaterial,
    LegionState,
    NodeMaterial,
    StoredCredentials,
)
from legion_nb.errors import ProviderAuthError

TOKEN = "CANARY-hetzner-token-0123456789abcdef"


@pytest.fixture
def published() -> Iterator[Redactor]:
    owner = object()
    scrubber = Redactor([TOKEN, "CANARY pass\tword 42"])
    redaction.publish(owner, scrubber)
    try:
        yield scrubber
    finally:
        redaction.withdraw(owner)


def test_a_secret_is_scrubbed_as_is_escaped_and_stripped() -> None:
    value = TOKEN + " \t"
    scrubber = Redactor([value])
    raw = f"Illegal header value b'Bearer {value}'"
    assert scrubber.redact(raw) == f"Illegal header value b'Bearer {REDACTED}'"
    as_repr = f"LocalProtocolError: Illegal header value {('Bearer ' + value).encode()!r}"
    assert TOKEN not in scrubber.redact(as_repr)
    as_json = json.dumps({"error": f"bad {value}"})
    assert TOKEN not in scrubber.redact(as_json)
    assert scrubber.redact(f"{TOKEN}{TOKEN}") == REDACTED * 2


def test_every_offset_and_length_is_found() -> None:
    """The gram index finds a secret wherever it starts, whatever its length above the minimum."""
    for length in range(redaction.MIN_SECRET, 40):
        secret = ("s3cr3t-" * 8)[:length].replace("-", "Q")
        scrubber = Redactor([secret])
        for prefix in range(0, 20):
            text = "x" * prefix + secret + "y" * 3
            assert secret not in scrubber.redact(text), (length, prefix)
            assert scrubber.redact(text) == "x" * prefix + REDACTED + "yyy"


def test_short_values_and_ordinary_text_are_left_alone() -> None:
    scrubber = Redactor(["short", TOKEN])
    assert scrubber.redact("a short note") == "a short note"
    assert scrubber.redact("") == ""
    assert not Redactor([])
    assert "forms" in repr(scrubber) and TOKEN not in repr(scrubber)


def test_data_is_scrubbed_in_every_string_and_keeps_its_shape() -> None:
    scrubber = Redactor([TOKEN])
    data = {"rows": [{"error": f"no: {TOKEN}", "n": 3}], "pair": ("ok", TOKEN), TOKEN: None}
    clean = scrubber.redact_data(data)
    assert clean == {"rows": [{"error": f"no: {REDACTED}", "n": 3}], "pair": ("ok", REDACTED), REDACTED: None}
    assert TOKEN in data["rows"][0]["error"]  # a copy: the original is untouched


def test_the_state_secrets_are_credentials_and_private_material_not_identifiers() -> None:
    state = LegionState(
        credentials={
            "scaleway": StoredCredentials(
                provider="scaleway",
                endpoint=None,
                secrets={
                    "access_key": "SCWCANARYACCESSKEY01",
                    "secret_key": "CANARY-scw-secret-0000-1111",
                    "project_id": "11111111-2222-3333-4444-555555555555",
                    "zone": "fr-par-1",
                },
            )
        },
        deployment=DeploymentMaterial(
            clusters={"a": ClusterMaterial("a", {"authority": {"private_key": "CANARY-ca-key-pem-xxxxxx"}})},
            nodes={
                "n1": NodeMaterial(
                    "n1",
                    {
                        "admin": {"username": "legion", "password": "CANARY-admin-password-1"},
                        "identity": {
                            "host_key": {"public": "ssh-ed25519 AAAA", "private": "CANARY-host-key"}
                        },
                    },
                )
            },
        ),
    )
    values = secret_values(state)
    assert {"CANARY-scw-secret-0000-1111", "CANARY-ca-key-pem-xxxxxx", "CANARY-admin-password-1"} <= values
    assert "CANARY-host-key" in values
    assert "fr-par-1" not in values and "legion" not in values and "ssh-ed25519 AAAA" not in values


def test_the_module_functions_scrub_what_is_published_until_withdrawn() -> None:
    owner = object()
    assert redaction.redact(TOKEN) == TOKEN
    redaction.publish(owner, Redactor([TOKEN]))
    assert redaction.redact(f"x {TOKEN}") == f"x {REDACTED}"
    assert redaction.redact_data([TOKEN]) == [REDACTED]
    redaction.withdraw(owner)
    assert redaction.redact(TOKEN) == TOKEN


def test_the_log_filter_scrubs_messages_arguments_and_tracebacks(
    published: Redactor, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("legion_nb.test_redaction")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.warning("credentials unusable: %s", f"bad {TOKEN}")
        try:
            raise RuntimeError(f"boom with CANARY pass\tword 42 and {TOKEN}")
        except RuntimeError:
            logger.exception("failed")
    assert TOKEN not in caplog.text
    assert "CANARY pass" not in caplog.text
    assert REDACTED in caplog.text
    assert "RuntimeError" in caplog.text  # the traceback is kept, only scrubbed


async def test_an_engine_api_error_leaves_scrubbed_and_without_a_quoting_cause(published: Redactor) -> None:
    class Surface:
        @engine_api
        async def fail(self) -> None:
            try:
                raise ValueError(f"Illegal header value b'Bearer {TOKEN} '")
            except ValueError as exc:
                raise ProviderAuthError("hetzner", f"refused {TOKEN}") from exc

    with pytest.raises(ProviderAuthError) as info:
        await Surface().fail()
    shown = "".join(traceback.format_exception(info.value))
    assert TOKEN not in shown
    assert info.value.message == f"hetzner: refused {REDACTED}"
    assert info.value.__cause__ is None


def test_extending_adds_secrets_without_touching_the_original() -> None:
    first = Redactor([TOKEN])
    other = "CANARY-another-secret-value-42"
    grown = first.extended([other])
    assert first.extended([TOKEN]) is first
    assert grown.redact(f"{TOKEN} {other}") == f"{REDACTED} {REDACTED}"
    assert first.redact(other) == other
    assert Redactor().union(grown) is grown
