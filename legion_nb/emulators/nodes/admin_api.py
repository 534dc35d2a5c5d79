"""A node's admin API: HTTPS with mutual TLS against the cluster CA, plus a Tang-like advertisement.

The API starts when ``legion-node activate-certs`` accepts the staged CA, certificate and key. From
then on a client must present a certificate issued by that CA (Legion's operator certificate, or a
peer node's certificate); any other client fails the TLS handshake and never reaches a handler.

Endpoints (JSON)::

    GET /v1/health      {"status": "ok", "node", "phase", "uptime_seconds", "services": {"tribes",
                        "tribes-sync", "tang", "node-exporter"}, "membership", "nbde": {"mode", "tang"}}
    GET /v1/readiness   the same report as ``legion-node readiness`` (HTTP 503 while not ready)
    GET /v1/metrics     cpu, memory, disk, uptime, sync peer count, ``sampled_at_ms`` (newest sample)
    GET /v1/logs        ?since=SEQ&limit=N -> {"entries": [{"seq", "time", "unit", "priority",
                        "message"}], "next", "more"}: the journal by cursor, back-dated history first
    GET /v1/telemetry   ?after=MS&limit=N -> {"series": [{"metric", "device"}], "samples": {"index",
                        "time_ms", "value"}, "next", "more"}: samples after a time cursor, columnar
    GET /tang/adv       a Tang advertisement: a JWS (ES512) over the node's signing + exchange JWKs

A page carries at most 1,000 journal lines or 100,000 samples whatever ``limit`` asks, fewer when
the node's ``page_limit`` says so; ``more`` tells a collector to keep paging.

A broken admin API (the sandbox fault) answers every request with HTTP 500; a stopped ``tang``
service answers ``/tang/adv`` with 503.

Why Tang sits behind mTLS here: in a Legion cluster the Tang clients are the cluster's own peers,
which hold node certificates anyway; the advertisement format is Tang's (RFC 7515 JWS, P-521 keys).
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from legion_nb.emulators.nodes.system import NodeSystem
from legion_nb.emulators.nodes.telemetry import SERIES

__all__ = ["TangKeys", "create_admin_app", "peer_common_name"]

_P521_BYTES = 66
_SYSTEM_KEY: web.AppKey[NodeSystem] = web.AppKey("system", NodeSystem)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _jwk(key: ec.EllipticCurvePrivateKey, alg: str, ops: list[str]) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-521",
        "x": _b64url(numbers.x.to_bytes(_P521_BYTES, "big")),
        "y": _b64url(numbers.y.to_bytes(_P521_BYTES, "big")),
        "alg": alg,
        "key_ops": ops,
    }


class TangKeys:
    """A node's Tang key pair set: one ES512 signing key and one ECMR exchange key (P-521)."""

    def __init__(self) -> None:
        self._signing = ec.generate_private_key(ec.SECP521R1())
        self._exchange = ec.generate_private_key(ec.SECP521R1())

    def advertisement(self) -> dict[str, Any]:
        """The JWS (general JSON serialization) Tang serves at ``/adv``."""
        payload = _b64url(
            json.dumps(
                {
                    "keys": [
                        _jwk(self._signing, "ES512", ["verify"]),
                        _jwk(self._exchange, "ECMR", ["deriveKey"]),
                    ]
                },
                separators=(",", ":"),
            ).encode()
        )
        protected = _b64url(
            json.dumps({"alg": "ES512", "cty": "jwk-set+json"}, separators=(",", ":")).encode()
        )
        der = self._signing.sign(f"{protected}.{payload}".encode("ascii"), ec.ECDSA(hashes.SHA512()))
        r, s = decode_dss_signature(der)
        signature = _b64url(r.to_bytes(_P521_BYTES, "big") + s.to_bytes(_P521_BYTES, "big"))
        return {"payload": payload, "signatures": [{"protected": protected, "signature": signature}]}


_TANG_KEY: web.AppKey[TangKeys] = web.AppKey("tang", TangKeys)


@web.middleware
async def _faults(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.app[_SYSTEM_KEY].admin_api_broken:
        return web.json_response({"error": "internal error"}, status=500)
    response: web.StreamResponse = await handler(request)
    return response


def create_admin_app(system: NodeSystem, tang: TangKeys) -> web.Application:
    app = web.Application(middlewares=[_faults])
    app[_SYSTEM_KEY] = system
    app[_TANG_KEY] = tang
    app.router.add_get("/v1/health", _health)
    app.router.add_get("/v1/readiness", _readiness)
    app.router.add_get("/v1/metrics", _metrics)
    app.router.add_get("/v1/logs", _logs)
    app.router.add_get("/v1/telemetry", _telemetry)
    app.router.add_get("/tang/adv", _tang_adv)
    return app


def peer_common_name(request: web.Request) -> str | None:
    """The CN of the client certificate that passed the mTLS handshake."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    cert: dict[str, Any] = dict(ssl_object.getpeercert() or {})
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


async def _health(request: web.Request) -> web.Response:
    report = request.app[_SYSTEM_KEY].health()
    return web.json_response({**report, "client": peer_common_name(request)})


async def _readiness(request: web.Request) -> web.Response:
    report = request.app[_SYSTEM_KEY].readiness()
    return web.json_response(report, status=200 if report["ready"] else 503)


async def _metrics(request: web.Request) -> web.Response:
    system = request.app[_SYSTEM_KEY]
    peers = len(system.tribes_config.get("peers", [])) if system.tribes_config else 0  # type: ignore[arg-type]
    return web.json_response(
        {
            "node": system.hostname,
            "uptime_seconds": round(system.uptime(), 3),
            "cpu_percent": 3.5,
            "memory_used_bytes": 512 * 1024 * 1024,
            "memory_total_bytes": 4096 * 1024 * 1024,
            "disk_used_bytes": 6 * 1024**3,
            "disk_total_bytes": 40 * 1024**3,
            "tribes": system.tribes_state(),
            "sync_peers": peers,
            "sampled_at_ms": system.telemetry.latest_ms(),
            "sample_interval_ms": system.telemetry.interval_ms,
        }
    )


async def _logs(request: web.Request) -> web.Response:
    system = request.app[_SYSTEM_KEY]
    try:
        since = int(request.query.get("since", "0"))
        limit = min(system.page_limit or 1000, 1000, max(1, int(request.query.get("limit", "200"))))
    except ValueError:
        return web.json_response({"error": "since and limit must be integers"}, status=400)
    entries = system.journal_after(since, limit)
    body = [
        {"seq": e.seq, "time": e.time, "unit": e.unit, "priority": e.priority, "message": e.message}
        for e in entries
    ]
    after = entries[-1].seq if entries else since
    return web.json_response({"entries": body, "next": after, "more": bool(system.journal_after(after, 1))})


async def _telemetry(request: web.Request) -> web.Response:
    system = request.app[_SYSTEM_KEY]
    try:
        after = int(request.query["after"]) if "after" in request.query else None
        cap = 100_000 if system.page_limit is None else system.page_limit * len(SERIES)
        limit = min(cap, 100_000, max(1, int(request.query.get("limit", "20000"))))
    except ValueError:
        return web.json_response({"error": "after and limit must be integers"}, status=400)
    return web.json_response(system.telemetry.page(after_ms=after, limit=limit).to_wire())


async def _tang_adv(request: web.Request) -> web.Response:
    if request.app[_SYSTEM_KEY].service_state("tang") != "active":
        return web.json_response({"error": "tang is not running"}, status=503)
    return web.json_response(request.app[_TANG_KEY].advertisement(), content_type="application/jose+json")
