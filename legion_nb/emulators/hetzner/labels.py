"""Labels and label selectors, as the Hetzner Cloud API understands them.

Selector grammar (terms joined by commas, all must hold): ``k=v`` / ``k==v`` (equals), ``k!=v`` (absent
or different), ``k`` (exists), ``!k`` (does not exist), ``k in (a,b)``, ``k notin (a,b)``.
Label keys may carry a ``prefix/`` part; values are at most 63 characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from legion_nb.emulators.hetzner.wire import ApiError, Json, invalid_input

__all__ = ["Selector", "filter_by_selector", "parse_selector", "validate_labels"]

Selector = Callable[[Mapping[str, str]], bool]

_KEY = r"(?:[a-z0-9A-Z](?:[a-z0-9A-Z.-]{0,251}[a-z0-9A-Z])?/)?[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?"
_VALUE = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")
_SET_TERM = re.compile(rf"^({_KEY})\s+(in|notin)\s+\(([^()]*)\)$")
_CMP_TERM = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")


def validate_labels(value: object) -> dict[str, str]:
    """Check a ``labels`` body field; returns the labels or raises 422 invalid_input."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_input("labels", "must be an object of string keys and string values")
    labels: dict[str, str] = {}
    for key, label in value.items():
        if not isinstance(label, str) or not _KEY_RE.match(key) or not _VALUE_RE.match(label):
            raise invalid_input("labels", f"label {key!r}={label!r} is not a valid key/value pair")
        if key.startswith("hetzner.cloud/"):
            raise invalid_input("labels", f"label prefix 'hetzner.cloud/' is reserved (label {key!r})")
        labels[key] = label
    return labels


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside ``( ... )``."""
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    terms.append("".join(current).strip())
    return terms


def _term(text: str) -> Selector:
    match = _SET_TERM.match(text)
    if match:
        key, op, raw_values = match.groups()
        values = {v.strip() for v in raw_values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    match = _CMP_TERM.match(text)
    if match:
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if text.startswith("!") and _KEY_RE.match(text[1:]):
        key = text[1:]
        return lambda labels: key not in labels
    if _KEY_RE.match(text):
        return lambda labels: text in labels
    raise ApiError(400, "invalid_input", f"label_selector term {text!r} is not valid")


def parse_selector(selector: str | None) -> Selector:
    """Compile a ``label_selector`` query value; an empty selector matches everything."""
    if selector is None or not selector.strip():
        return lambda labels: True
    terms = [_term(t) for t in _split_terms(selector)]
    return lambda labels: all(term(labels) for term in terms)


def filter_by_selector(items: list[Json], selector: str | None) -> list[Json]:
    match = parse_selector(selector)
    return [item for item in items if match(item.get("labels") or {})]
