"""``/ssh_keys``: public keys injected into new servers.

The fingerprint is computed from the key as Hetzner does (MD5 of the decoded key blob, colon-separated
hex). A second key with the same name or the same fingerprint is ``409 uniqueness_error``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from aiohttp import web

from legion_nb.emulators.hetzner.labels import filter_by_selector, validate_labels
from legion_nb.emulators.hetzner.project import HetznerProject, SshKeyRecord
from legion_nb.emulators.hetzner.wire import (
    ApiError,
    Json,
    by_id,
    filter_equal,
    invalid_input,
    page_of,
    read_body,
    resource_routes,
    sort_items,
)
from legion_nb.emulators.httpkit import isoformat

__all__ = ["SshKeysApi", "fingerprint"]

_KEY_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def fingerprint(public_key: str) -> str:
    """MD5 fingerprint of an OpenSSH public key line; raises 422 invalid_input when it is not one."""
    parts = public_key.strip().split()
    if len(parts) < 2 or parts[0] not in _KEY_TYPES:
        raise invalid_input("public_key", "must be an OpenSSH public key line such as 'ssh-ed25519 AAAA...'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_input("public_key", "the key data is not valid base64") from None
    declared = parts[0].encode()
    if blob[4 : 4 + len(declared)] != declared:
        raise invalid_input("public_key", "the key data does not match its declared type")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _wire(key: SshKeyRecord) -> Json:
    return {
        "id": key.id,
        "name": key.name,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "labels": dict(key.labels),
        "created": key.created,
    }


class SshKeysApi:
    def __init__(self, project: HetznerProject) -> None:
        self.p = project

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return resource_routes(prefix, "ssh_keys", self)

    def _get(self, raw_id: str) -> SshKeyRecord:
        return by_id(self.p.ssh_keys, raw_id, "ssh_key")

    async def index(self, request: web.Request) -> web.Response:
        items = [_wire(k) for k in self.p.ssh_keys.values()]
        items = filter_equal(request, items, "name", "fingerprint")
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("id", "name")), "ssh_keys")

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"ssh_key": _wire(self._get(request.match_info["id"]))})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        name = body.get("name")
        public_key = body.get("public_key")
        if not isinstance(name, str) or not name.strip():
            raise invalid_input("name", "is required")
        if not isinstance(public_key, str):
            raise invalid_input("public_key", "is required")
        labels = validate_labels(body.get("labels"))
        fp = fingerprint(public_key)
        for key in self.p.ssh_keys.values():
            if key.name == name:
                raise ApiError(
                    409,
                    "uniqueness_error",
                    "SSH key with the same name already exists",
                    {"fields": [{"name": "name"}]},
                )
            if key.fingerprint == fp:
                raise ApiError(
                    409,
                    "uniqueness_error",
                    "SSH key with the same fingerprint already exists",
                    {"fields": [{"name": "public_key"}]},
                )
        key = SshKeyRecord(
            self.p.new_id("ssh_key"), name, fp, public_key.strip(), labels, isoformat(self.p.world.now())
        )
        self.p.ssh_keys[key.id] = key
        return web.json_response({"ssh_key": _wire(key)}, status=201)

    async def update(self, request: web.Request) -> web.Response:
        key = self._get(request.match_info["id"])
        body = await read_body(request)
        name = body.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise invalid_input("name", "must be a non-empty string")
            if any(k.name == name and k.id != key.id for k in self.p.ssh_keys.values()):
                raise ApiError(409, "uniqueness_error", "SSH key with the same name already exists")
            key.name = name
        if "labels" in body:
            key.labels = validate_labels(body["labels"])
        return web.json_response({"ssh_key": _wire(key)})

    async def delete(self, request: web.Request) -> web.Response:
        key = self._get(request.match_info["id"])
        del self.p.ssh_keys[key.id]
        return web.Response(status=204)
