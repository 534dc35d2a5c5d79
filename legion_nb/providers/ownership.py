"""Ownership: how a provider resource is marked as Legion's and found again after a crash.

Everything Legion creates carries :class:`OwnershipLabels`: labels where the provider has labels,
``key=value`` tags where it has only tags (:meth:`OwnershipLabels.as_tags`, :func:`labels_from_tags`),
and :func:`encode_owned_name` where it has neither. Resilience then finds the resource of an intent by
its labels alone, whatever else shares its name.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from legion_nb.errors import ValidationError
from legion_nb.legion_labels import LEGION_ID_LABEL, LEGION_MANAGED_LABEL, claimed_legion_id

__all__ = [
    "LEGION_ID_LABEL",
    "LEGION_MANAGED_LABEL",
    "OwnershipLabels",
    "decode_owned_name",
    "deterministic_name",
    "encode_owned_name",
    "labels_from_tags",
    "labels_match",
]

_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class OwnershipLabels:
    """The two labels that mark a provider resource as Legion's: ``legion/managed=true`` and
    ``legion/id=<uuid>``.

    The id is minted by the engine when it first plans the resource and stored with its intent, so
    that after a crash or an ambiguous create the resource can be found by labels alone.
    """

    legion_id: str

    def __post_init__(self) -> None:
        try:
            uuid.UUID(self.legion_id)
        except ValueError as exc:
            raise ValidationError(f"legion id {self.legion_id!r} is not a UUID") from exc

    @classmethod
    def new(cls) -> OwnershipLabels:
        return cls(str(uuid.uuid4()))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> OwnershipLabels | None:
        """The ownership a resource's labels claim, or None when it is not Legion-managed
        (:func:`~legion_nb.legion_labels.claimed_legion_id`: both labels, the id a UUID)."""
        legion_id = claimed_legion_id(labels)
        return None if legion_id is None else cls(legion_id)

    def as_labels(self) -> dict[str, str]:
        return {LEGION_MANAGED_LABEL: "true", LEGION_ID_LABEL: self.legion_id}

    def merged_into(self, labels: Mapping[str, str]) -> dict[str, str]:
        """``labels`` plus the ownership labels (which win over any clash)."""
        return {**labels, **self.as_labels()}

    def as_tags(self) -> tuple[str, ...]:
        """The labels as ``key=value`` strings, for providers with tags instead of labels."""
        return tuple(f"{key}={value}" for key, value in self.as_labels().items())


_OWNED_NAME_SEPARATOR = "--"


def encode_owned_name(name: str, labels: Mapping[str, str]) -> str:
    """The provider-side name of a resource that can hold neither labels nor tags (OVHcloud instances
    and SSH keys, Scaleway IAM SSH keys): ``name--<legion uuid>`` when ``labels`` carry ownership,
    else ``name`` unchanged.

    Writing the Legion id into the name is what lets resilience find such a resource again after an
    ambiguous create: exactly the resources whose name carries the id belong to the intent, however
    many others share the plain name. :func:`decode_owned_name` reads it back.
    """
    ownership = OwnershipLabels.from_labels(labels)
    return f"{name}{_OWNED_NAME_SEPARATOR}{ownership.legion_id}" if ownership else name


def decode_owned_name(provider_name: str) -> tuple[str, dict[str, str]]:
    """The plain name and the ownership labels that :func:`encode_owned_name` put into a provider-side
    name; a name without a UUID after its last ``--`` is someone else's and comes back as it is."""
    head, sep, tail = provider_name.rpartition(_OWNED_NAME_SEPARATOR)
    if sep and head:
        try:
            legion_id = str(uuid.UUID(tail))
        except ValueError:
            return provider_name, {}
        if legion_id == tail.lower():
            return head, OwnershipLabels(legion_id).as_labels()
    return provider_name, {}


def labels_from_tags(tags: Iterable[str]) -> dict[str, str]:
    """Read ``key=value`` tags back into labels; a tag without ``=`` becomes a key with value ``""``."""
    labels: dict[str, str] = {}
    for tag in tags:
        key, _, value = tag.partition("=")
        labels[key] = value
    return labels


def labels_match(labels: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    """True when every wanted key is present with the wanted value (None matches everything)."""
    if not wanted:
        return True
    return all(labels.get(key) == value for key, value in wanted.items())


def deterministic_name(kind: str, name: str, legion_id: str | None = None) -> str:
    """A provider-safe, reproducible name for a resource Legion creates on the operator's behalf.

    ``deterministic_name("key", "fra-1", id)`` -> ``legion-key-fra-1-1a2b3c4d``. The same inputs
    always give the same name, so a re-run after a crash looks for, and finds, the same resource.
    """
    parts = ["legion", kind, name] + ([legion_id.split("-")[0]] if legion_id else [])
    raw = "-".join(parts).lower()
    return _NAME_UNSAFE.sub("-", raw).strip("-")[:63].rstrip("-")
