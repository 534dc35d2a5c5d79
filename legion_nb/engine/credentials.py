"""Provider credentials in the state: checking them and showing only their non-secret facts.

Credentials are stored in the encrypted state and nowhere else. What leaves the engine is the
provider name, the endpoint and the *names* of the fields that are set, so an operator can see what is
configured without any secret reaching a terminal, a log or a notebook output.

Every value must be able to travel in an HTTP header as given: printable ASCII, no leading or
trailing space. A value that is not would be refused by the HTTP stack on every later call (and,
before this check existed, quoted in full by its error), so it is refused here, once, with a
message that names the field and the kind of character, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast
from urllib.parse import urlsplit

from legion_nb.engine.results import CredentialFacts
from legion_nb.engine.state.model import LegionState, StoredCredentials
from legion_nb.engine.state.validation import validate_provider
from legion_nb.errors import UsageError, ValidationError

__all__ = [
    "REQUIRED_FIELDS",
    "credential_facts",
    "credentials_facts",
    "delete_credentials",
    "set_credentials",
]

#: The fields each provider's adapter cannot work without (GUIDE §3 lists the full sets; the
#: others, e.g. Scaleway's zone or OVH's service name, are optional here).
REQUIRED_FIELDS: Mapping[str, frozenset[str]] = {
    "hetzner": frozenset({"token"}),
    "scaleway": frozenset({"access_key", "secret_key", "project_id"}),
    "ovh": frozenset({"application_key", "application_secret", "consumer_key"}),
}
_MAX_FIELD = 4096
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HEADER_SAFE = re.compile(r"[ -~]*")  # printable ASCII, space included (inside a value only)


def _value_problem(value: str) -> str | None:
    """What keeps ``value`` out of an HTTP header, in words that do not quote it; None if nothing."""
    if not value.isascii():
        return "a non-ASCII character"
    if not _HEADER_SAFE.fullmatch(value):
        return "a control character (tab, carriage return, line feed or similar)"
    if value != value.strip():
        return "leading or trailing spaces"
    return None


def _endpoint(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"endpoint {url!r} must be an http(s) URL like https://api.hetzner.cloud/v1")
    if parts.username or parts.password:
        raise ValidationError("the endpoint URL must not carry a user or password: put secrets in the JSON")
    return url.rstrip("/")


def set_credentials(
    state: LegionState, *, provider: str, secrets: Mapping[str, Any], endpoint: str | None = None
) -> LegionState:
    """The state with ``provider``'s credentials replaced. Messages name fields, never values."""
    name = validate_provider(provider)
    if not isinstance(secrets, Mapping):
        raise ValidationError("credentials must be one JSON object of field names to strings")
    clean: dict[str, str] = {}
    for given, value in secrets.items():
        if not isinstance(given, str) or not _FIELD_NAME.fullmatch(given.strip()):
            raise ValidationError("credential field names must be 1 to 64 letters, digits, '_', '.' or '-'")
        key = given.strip()
        if not isinstance(value, str) or not value or len(value) > _MAX_FIELD:
            raise ValidationError(
                f"credential field {key!r} must be a non-empty string (at most {_MAX_FIELD})"
            )
        problem = _value_problem(value)
        if problem is not None:
            raise ValidationError(
                f"credential field {key!r} holds {problem}, which HTTP headers cannot carry: "
                "paste the value exactly as the provider shows it"
            )
        clean[key] = value
    missing = sorted(REQUIRED_FIELDS[name] - clean.keys())
    if missing:
        raise ValidationError(f"{name} credentials lack {', '.join(missing)}: give them in the JSON object")
    record = StoredCredentials(provider=name, endpoint=_endpoint(endpoint), secrets=clean)
    return replace(state, credentials={**state.credentials, name: record})


def delete_credentials(state: LegionState, *, provider: str) -> LegionState:
    """The state without ``provider``'s credentials; ``UsageError`` when none are stored, so a
    mistyped provider is not taken for a deletion that happened."""
    name = validate_provider(provider)
    if name not in state.credentials:
        raise UsageError(f"no {name} credentials are stored: `legion credentials show` lists those that are")
    return replace(state, credentials={k: v for k, v in state.credentials.items() if k != name})


def credentials_facts(state: LegionState) -> list[CredentialFacts]:
    """Provider, endpoint and field names of every stored credential set; never a secret value."""
    return [credential_facts(state.credentials[name]) for name in sorted(state.credentials)]


def credential_facts(record: StoredCredentials) -> CredentialFacts:
    """The non-secret facts of one credential set (the record's own ``to_json``)."""
    return cast("CredentialFacts", record.to_json())
