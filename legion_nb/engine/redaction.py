"""One layer that scrubs secret values from text on its way out of the process.

Secrets are kept out of outputs by construction (records show field names, errors are written
not to quote values, foreign messages are translated at the edge). This module is the net behind
that: every error message, log record, snapshot string, daemon reply and trace line passes
through :func:`redact` before it leaves, and any value an unlocked state holds as a secret
(provider credentials, node admin passwords, private keys) comes out as
``[redacted]``, also in the escaped forms a ``repr`` or JSON would give it.

* :class:`Redactor` is an immutable scrubber for one set of secret values;
  :meth:`Redactor.from_state` collects them from a :class:`LegionState`.
* The process keeps one active set: an unlocked engine :func:`publish` es its redactor (and
  :func:`track` keeps it current while the state changes; a value replaced during the session
  stays scrubbed until logout), :func:`withdraw` drops it. :func:`redact` and
  :func:`redact_data` use the union of everything published, so code that has no engine at hand
  (the CLI's error line, a log handler) still scrubs every secret of every unlocked state.
* :class:`RedactingFilter` is a ``logging.Filter`` for handlers: the formatted message and any
  traceback text are scrubbed before a handler writes them.

Values shorter than :data:`MIN_SECRET` characters are not scrubbed: they cannot be told apart from
ordinary words, and no provider issues secrets that short.

Matching costs one dictionary lookup per :data:`MIN_SECRET` characters of text whatever the
number of secrets: an occurrence of a secret of ``2*MIN_SECRET - 1`` characters or more always has
a gram-aligned position within its first :data:`MIN_SECRET` characters, so each secret indexes the
grams at those offsets (shorter secrets are searched for directly). A state change that adds
secrets extends the index with those alone.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from legion_nb.errors import LegionError

if TYPE_CHECKING:
    from legion_nb.engine.state.model import LegionState
    from legion_nb.engine.state.persistence import PersistenceSupervisor, StateChange

__all__ = [
    "MIN_SECRET",
    "REDACTED",
    "RedactingFilter",
    "Redactor",
    "SecretsRedaction",
    "active",
    "install_log_filter",
    "publish",
    "redact",
    "redact_data",
    "scrub_error",
    "secret_values",
    "track",
    "withdraw",
]

REDACTED = "[redacted]"
MIN_SECRET = 8
_GRAM = MIN_SECRET
_SECRET_KEYS = frozenset({"private", "private_key", "password"})
"""Keys under which deployment material holds secrets (the rest is public keys and certificates)."""

T = TypeVar("T")


class Redactor:
    """Scrubs a fixed set of secret values (and their escaped forms) from text."""

    __slots__ = ("_grams", "_short", "secrets", "variants")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = frozenset(secrets)
        self.variants = _forms_of(self.secrets)
        self._grams: dict[str, tuple[tuple[str, int], ...]] = {}
        self._short: tuple[str, ...] = ()
        self._index(self.variants)

    @classmethod
    def from_state(cls, state: LegionState) -> Redactor:
        return cls(secret_values(state))

    def extended(self, secrets: Iterable[str]) -> Redactor:
        """A redactor for these secrets too (``self`` when they add nothing); the index is extended,
        not rebuilt, so a state change that adds one node's keys costs that node's keys only."""
        new = frozenset(secrets) - self.secrets
        if not new:
            return self
        added = _forms_of(new) - self.variants
        grown = Redactor.__new__(Redactor)
        grown.secrets = self.secrets | new
        grown.variants = self.variants | added
        grown._grams = dict(self._grams)
        grown._short = self._short
        grown._index(added)
        return grown

    def union(self, other: Redactor) -> Redactor:
        """A redactor for the secrets of both."""
        return self.extended(other.secrets) if self.secrets else other

    def _index(self, variants: Iterable[str]) -> None:
        grams = self._grams
        short = list(self._short)
        for variant in variants:
            if len(variant) < 2 * _GRAM - 1:
                short.append(variant)
                continue
            # An occurrence's first gram-aligned position in a text lies within its first _GRAM
            # characters, so the grams at those offsets are all the index needs.
            for offset in range(_GRAM):
                gram = variant[offset : offset + _GRAM]
                grams[gram] = (*grams.get(gram, ()), (variant, offset))
        self._short = tuple(short)

    def __bool__(self) -> bool:
        return bool(self.variants)

    def __repr__(self) -> str:
        return f"Redactor({len(self.variants)} forms)"  # never the values

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of a secret replaced by ``[redacted]``."""
        if len(text) < MIN_SECRET or not self.variants:
            return text
        spans = self._spans(text)
        if not spans:
            return text
        spans.sort()
        parts: list[str] = []
        position = 0
        for start, end in spans:
            if end <= position:
                continue  # inside a span already replaced
            if start >= position:
                parts.append(text[position:start])
                parts.append(REDACTED)
            position = end
        parts.append(text[position:])
        return "".join(parts)

    def mentions(self, text: str) -> bool:
        """Whether ``text`` holds any of the secrets (one scan, no copy)."""
        return len(text) >= MIN_SECRET and bool(self.variants) and bool(self._spans(text))

    def redact_data(self, value: T) -> T:
        """A copy of a JSON-like value (dicts, lists, tuples, strings) with every string scrubbed."""
        return self._walk(value) if self.variants else value

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if type(value) is list:
            return [self._walk(v) for v in value]
        if type(value) is tuple:
            return tuple(self._walk(v) for v in value)
        return value

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        lookup = self._grams.get
        for position in range(0, len(text) - _GRAM + 1, _GRAM):
            for variant, offset in lookup(text[position : position + _GRAM], ()):
                start = position - offset
                if start >= 0 and text.startswith(variant, start):
                    spans.append((start, start + len(variant)))
        for variant in self._short:
            start = text.find(variant)
            while start >= 0:
                spans.append((start, start + len(variant)))
                start = text.find(variant, start + 1)
        return spans


def _forms_of(secrets: Iterable[str]) -> frozenset[str]:
    return frozenset(v for secret in secrets for v in _variants(secret) if len(v) >= MIN_SECRET)


def _variants(secret: str) -> set[str]:
    """The forms a secret takes in text: as is, stripped, and escaped by ``repr`` or JSON."""
    forms = {secret, secret.strip(), repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    forms.add(repr(secret.encode("utf-8", "backslashreplace"))[2:-1])
    for line in secret.splitlines():  # a multi-line key quoted line by line
        forms.add(line.strip())
    return {form for form in forms if form}


def secret_values(state: LegionState) -> set[str]:
    """Every secret value ``state`` holds: credential secrets and deployment private material.

    Credential fields a provider's descriptor names as options (Scaleway's zone and project,
    OVH's service name) are identifiers that appear in ordinary output and are left alone.
    """
    values = _credential_secrets(state)
    for cluster in state.deployment.clusters.values():
        _collect(cluster.security, values)
    for node in state.deployment.nodes.values():
        _collect(node.security, values)
    return values


def _credential_secrets(state: LegionState) -> set[str]:
    from legion_nb.providers import registry  # noqa: PLC0415 - only unlocked engines need it

    values: set[str] = set()
    for name, stored in state.credentials.items():
        try:
            secret_keys: Iterable[str] = registry.descriptor(name).secret_keys
        except LegionError:  # a provider this build has no adapter for: every field is a secret
            secret_keys = stored.secrets.keys()
        values.update(v for k, v in stored.secrets.items() if k in secret_keys)
    return values


def _changed_secrets(before: LegionState, after: LegionState) -> set[str]:
    """The secret values of whatever ``after`` replaced (records compared by identity: cheap)."""
    values: set[str] = set()
    if after.credentials is not before.credentials:
        values |= _credential_secrets(after)
    if after.deployment is not before.deployment:
        for name, cluster in after.deployment.clusters.items():
            if before.deployment.clusters.get(name) is not cluster:
                _collect(cluster.security, values)
        for name, node in after.deployment.nodes.items():
            if before.deployment.nodes.get(name) is not node:
                _collect(node.security, values)
    return values


def _collect(material: Any, into: set[str]) -> None:
    if isinstance(material, Mapping):
        for key, value in material.items():
            if key in _SECRET_KEYS and isinstance(value, str):
                into.add(value)
            else:
                _collect(value, into)


# -- the process's active secrets ------------------------------------------------------------

_published: dict[int, Redactor] = {}
_active: list[Redactor] = [Redactor()]  # the union, rebuilt when something is published


def publish(owner: object, redactor: Redactor) -> None:
    """Make ``redactor``'s secrets part of what :func:`redact` scrubs, until ``owner`` withdraws."""
    _published[id(owner)] = redactor
    _rebuild()


def withdraw(owner: object) -> None:
    """Stop scrubbing what ``owner`` published (its state was locked or closed)."""
    if _published.pop(id(owner), None) is not None:
        _rebuild()


def active() -> Redactor:
    """The union of every published redactor."""
    return _active[0]


def redact(text: str) -> str:
    """``text`` with every secret of every unlocked state in this process scrubbed."""
    return _active[0].redact(text)


def redact_data(value: T) -> T:
    """A JSON-like value with every string scrubbed like :func:`redact`."""
    return _active[0].redact_data(value)


def scrub_error(exc: BaseException) -> BaseException:
    """``exc`` with its message scrubbed in place, and its cause chain cut if a cause quotes a secret.

    For errors on their way out of the engine to a caller who will print them, traceback and
    causes included (a notebook cell, the CLI). Returns ``exc`` so that ``raise scrub_error(e)``
    reads naturally.
    """
    redactor = _active[0]
    if not redactor:
        return exc
    if isinstance(exc, LegionError):
        message = exc.message
        scrubbed = redactor.redact(message)
        if scrubbed != message:
            exc.args = (scrubbed, *exc.args[1:])
        detail = getattr(exc, "provider_message", None)
        if isinstance(detail, str):
            exc.provider_message = redactor.redact(detail)  # type: ignore[attr-defined]
    elif redactor.mentions(str(exc)):
        exc.args = tuple(redactor.redact(a) if isinstance(a, str) else a for a in exc.args)
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None:
        if redactor.mentions(str(cause)) or redactor.mentions(repr(cause)):
            exc.__cause__, exc.__suppress_context__ = None, True
            break
        cause = cause.__cause__ or cause.__context__
    return exc


def _rebuild() -> None:
    union = Redactor()
    for redactor in _published.values():
        union = union.union(redactor)
    _active[0] = union


def track(owner: object, persistence: PersistenceSupervisor[LegionState]) -> Callable[[], None]:
    """Publish the secrets of ``persistence``'s state now and after each change; returns the undo.

    A secret replaced during the session (new credentials after a failure) stays scrubbed until
    the returned function is called at logout: messages produced before the change may still
    travel afterwards.
    """
    current = [Redactor.from_state(persistence.state)]
    publish(owner, current[0])

    def changed(change: StateChange[LegionState]) -> None:
        grown = current[0].extended(_changed_secrets(change.before, change.after))
        if grown is not current[0]:
            current[0] = grown
            publish(owner, grown)

    unsubscribe = persistence.subscribe(changed)

    def undo() -> None:
        unsubscribe()
        withdraw(owner)

    return undo


class RedactingFilter(logging.Filter):
    """Scrubs a record's message and traceback text before a handler formats them.

    Install it on handlers (``handler.addFilter(RedactingFilter())``): handler filters see the
    records of every logger that propagates to them, logger filters only their own logger's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = _active[0]
        if not redactor:
            return True
        message = record.getMessage()
        scrubbed = redactor.redact(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redactor.redact(text)
        return True


class SecretsRedaction:
    """The session service that publishes the unlocked state's secrets while the session lasts.

    Entered first, so that it starts before any service that could produce a message quoting a
    secret, and closed (withdrawing the secrets) after all of them.
    """

    def __init__(self, persistence: PersistenceSupervisor[LegionState]) -> None:
        self._persistence = persistence
        self._undo: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"SecretsRedaction(active={self._undo is not None})"

    async def __aenter__(self) -> SecretsRedaction:
        install_log_filter()
        self._undo = track(self, self._persistence)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        undo, self._undo = self._undo, None
        if undo is not None:
            undo()


_FILTER = RedactingFilter()


def install_log_filter(handler: logging.Handler | None = None) -> None:
    """Put the redacting filter on ``handler``, or on every root handler and logging's last resort.

    Without arguments it covers what an unconfigured process (the CLI) and a configured one (the
    daemon's log, a notebook kernel) write records with; installing twice is harmless.
    """
    handlers = [handler] if handler is not None else [*logging.getLogger().handlers, logging.lastResort]
    for each in handlers:
        if each is not None and _FILTER not in each.filters:
            each.addFilter(_FILTER)
