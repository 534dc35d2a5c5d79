"""The emulated IAM SSH key API: ``/iam/v1alpha1/ssh-keys``.

SSH keys live at Project level (not per zone); Scaleway injects every enabled key of the Project into
new Instances. The create call answers with the bare key object (no wrapper), lists page with
``page``/``page_size`` and ``total_count``; a public key registered twice is a ``conflict``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway.errors import ScwApiError, invalid_argument, json_response, not_found
from legion_nb.emulators.scaleway.store import ScalewayAccount, SshKeyEntry
from legion_nb.emulators.scaleway.wire import flag, paged_list, read_body, require

__all__ = ["IamApi", "ssh_fingerprint"]

_ECDSA_BITS = {"ecdsa-sha2-nistp256": 256, "ecdsa-sha2-nistp384": 384, "ecdsa-sha2-nistp521": 521}


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated key")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated key")
    return blob[offset + 4 : end], end


def ssh_fingerprint(public_key: str) -> str:
    """Scaleway's fingerprint text, ``"<bits> SHA256:<digest> <comment> (<type>)"``.

    Raises ``ValueError`` when ``public_key`` is not an OpenSSH public key line.
    """
    parts = public_key.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError("expected '<type> <base64> [comment]'")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2] if len(parts) > 2 else ""
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("key material is not base64") from None
    inner_type, offset = _read_string(blob, 0)
    if inner_type.decode(errors="replace") != key_type:
        raise ValueError("key type does not match key material")
    if key_type == "ssh-ed25519":
        bits = 256
    elif key_type == "ssh-rsa":
        _, offset = _read_string(blob, offset)  # public exponent
        modulus, _ = _read_string(blob, offset)
        bits = int.from_bytes(modulus, "big").bit_length()
    elif key_type in _ECDSA_BITS:
        bits = _ECDSA_BITS[key_type]
    else:
        raise ValueError(f"unsupported key type {key_type}")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    label = key_type.removeprefix("ssh-").split("-")[0].upper()
    return " ".join(p for p in (str(bits), f"SHA256:{digest}", comment, f"({label})") if p)


class IamApi:
    def __init__(self, account: ScalewayAccount) -> None:
        self.account = account

    def routes(self) -> list[web.RouteDef]:
        base = "/iam/v1alpha1/ssh-keys"
        return [
            web.get(base, self.list_keys),
            web.post(base, self.create_key),
            web.get(f"{base}/{{key_id}}", self.get_key),
            web.patch(f"{base}/{{key_id}}", self.update_key),
            web.delete(f"{base}/{{key_id}}", self.delete_key),
        ]

    def key_json(self, key: SshKeyEntry) -> dict[str, Any]:
        return {
            "id": key.id,
            "name": key.name,
            "public_key": key.public_key,
            "fingerprint": key.fingerprint,
            "created_at": key.created.isoformat(),
            "updated_at": key.updated.isoformat(),
            "organization_id": self.account.organization_id,
            "project_id": self.account.project_id,
            "disabled": key.disabled,
        }

    def _key(self, request: web.Request) -> SshKeyEntry:
        key_id = request.match_info["key_id"]
        key = self.account.ssh_keys.get(key_id)
        if key is None:
            raise not_found("iam_ssh_key", key_id)
        return key

    async def list_keys(self, request: web.Request) -> web.Response:
        self.account.check_project(request.query.get("project_id"), request.query.get("organization_id"))
        keys = sorted(self.account.ssh_keys.values(), key=lambda k: (k.created, k.id))
        if request.query.get("order_by", "created_at_asc").endswith("_desc"):
            keys.reverse()
        if name := request.query.get("name"):
            keys = [k for k in keys if name in k.name]
        disabled = flag(request, "disabled")
        if disabled is not None:
            keys = [k for k in keys if k.disabled is disabled]
        return paged_list(request, "ssh_keys", [self.key_json(k) for k in keys])

    async def create_key(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        self.account.check_project(body.get("project_id"))
        public_key = require(body, "public_key", str, "public_key must be an OpenSSH public key line")
        try:
            fingerprint = ssh_fingerprint(public_key)
        except ValueError as exc:
            raise invalid_argument(
                "public_key", f"public_key is not a valid OpenSSH public key: {exc}"
            ) from None
        material = public_key.split()[1]
        for existing in self.account.ssh_keys.values():
            if existing.public_key.split()[1] == material:
                raise ScwApiError(
                    409,
                    "conflict",
                    "SSH key with this public key already exists",
                    resource="iam_ssh_key",
                    resource_id=existing.id,
                )
        name = body.get("name") or f"key-{self.account.new_id()[:8]}"
        now = self.account.world.now()
        key = SshKeyEntry(self.account.new_id(), str(name), public_key.strip(), fingerprint, now, now)
        self.account.ssh_keys[key.id] = key
        return json_response(self.key_json(key))

    async def get_key(self, request: web.Request) -> web.Response:
        return json_response(self.key_json(self._key(request)))

    async def update_key(self, request: web.Request) -> web.Response:
        key = self._key(request)
        body = await read_body(request)
        if "name" in body:
            key.name = require(body, "name", str, "name must be a non-empty string")
        if "disabled" in body:
            key.disabled = bool(body["disabled"])
        key.updated = self.account.world.now()
        return json_response(self.key_json(key))

    async def delete_key(self, request: web.Request) -> web.Response:
        key = self._key(request)
        del self.account.ssh_keys[key.id]
        return web.Response(status=204)
