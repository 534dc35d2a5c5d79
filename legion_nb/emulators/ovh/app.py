"""The OVHcloud emulator assembled: ``create_app(world) -> Emulator`` (contract in ``sandbox/world.py``).

Middleware order, outermost first:

1. ``fault_middleware`` (shared): latency, request counting, injected 429/5xx/dropped connections.
   ``/auth/time`` is exempt, as the clock probe every SDK makes before its first signed call.
2. :func:`errors.error_middleware`: OVHcloud error bodies and an ``X-OVH-QUERYID`` on every answer.
3. :func:`auth.signature_middleware`: application key, consumer key, clock skew and signature.

The emulator state is reachable from the app (:func:`state_of`) so that tests and the sandbox can
look at what the outside world sees, e.g. which DNS records are published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from legion_nb.emulators.faults import fault_middleware
from legion_nb.emulators.ovh.auth import Credentials, signature_middleware
from legion_nb.emulators.ovh.billing import Billing
from legion_nb.emulators.ovh.catalog import Catalog, order_catalog
from legion_nb.emulators.ovh.compute import Compute
from legion_nb.emulators.ovh.dns import DEFAULT_ZONES, Dns
from legion_nb.emulators.ovh.errors import (
    QUERY_ID_HEADER,
    QueryIds,
    error_middleware,
    fault_body,
    json_response,
)
from legion_nb.emulators.ovh.operations import Operations
from legion_nb.emulators.ovh.usage import Usage
from legion_nb.emulators.world import Emulator, SandboxWorld

__all__ = ["PREFIX", "PROVIDER", "OvhState", "create_app", "state_of"]

PROVIDER = "ovh"
PREFIX = "/1.0"
_UNSIGNED = frozenset({f"{PREFIX}/auth/time", f"{PREFIX}/order/catalog/public/cloud"})


@dataclass
class OvhState:
    """Everything one OVHcloud emulator knows."""

    credentials: Credentials
    service_name: str
    compute: Compute
    dns: Dns
    billing: Billing

    def add_consumer_key(self, consumer_key: str, *, can_write: bool) -> None:
        """Accept another consumer key (``can_write=False`` makes a read-only credential)."""
        self.credentials.consumers[consumer_key] = can_write


STATE_KEY = web.AppKey("legion_ovh_state", OvhState)


def state_of(target: Emulator | web.Application) -> OvhState:
    app = target.app if isinstance(target, Emulator) else target
    return app[STATE_KEY]


def create_app(world: SandboxWorld, *, zones: tuple[str, ...] = DEFAULT_ZONES) -> Emulator:
    """An OVHcloud API emulator with fresh credentials, one Public Cloud project and ``zones``."""
    consumer_key = world.new_secret(24)
    credentials = Credentials(
        application_key=world.new_secret(12),
        application_secret=world.new_secret(24),
        consumers={consumer_key: True},
    )
    service_name = "".join(f"{b:02x}" for b in world.rng.randbytes(16))
    catalog = Catalog()
    compute = Compute(world, catalog, service_name)
    state = OvhState(credentials, service_name, compute, Dns(world, zones), Billing(compute, catalog))
    query_ids = QueryIds(lambda: world.random_token(8))

    def render_fault(status: int, kind: str) -> web.Response:
        response = fault_body(status, kind)
        response.headers[QUERY_ID_HEADER] = query_ids.next()
        return response

    app = web.Application(
        middlewares=[
            fault_middleware(PROVIDER, world, render_fault, exempt=lambda r: r.path == f"{PREFIX}/auth/time"),
            error_middleware(query_ids),
            signature_middleware(credentials, _UNSIGNED, lambda: world.now().timestamp()),
        ]
    )
    app[STATE_KEY] = state
    app.add_routes(_account_routes(state))
    app.add_routes(compute.routes(PREFIX))
    app.add_routes(Operations(compute).routes(PREFIX))
    app.add_routes(state.dns.routes(PREFIX))
    app.add_routes(state.billing.routes(PREFIX))
    app.add_routes(Usage(state.billing).routes(PREFIX))
    return Emulator(
        name=PROVIDER,
        app=app,
        credentials={
            "application_key": credentials.application_key,
            "application_secret": credentials.application_secret,
            "consumer_key": consumer_key,
            "service_name": service_name,
        },
        prefix=PREFIX,
    )


def _account_routes(state: OvhState) -> list[web.RouteDef]:
    world = state.compute.world

    async def auth_time(request: web.Request) -> web.Response:
        return json_response(int(world.now().timestamp()))

    async def current_credential(request: web.Request) -> web.Response:
        consumer = request.headers.get("X-Ovh-Consumer", "")
        can_write = state.credentials.consumers.get(consumer, False)
        methods = ("GET", "POST", "PUT", "DELETE") if can_write else ("GET",)
        body: dict[str, Any] = {
            "credentialId": 1,
            "applicationId": 1,
            "status": "validated",
            "rules": [{"method": m, "path": "/*"} for m in methods],
            "creation": "2026-01-01T00:00:00+00:00",
            "expiration": None,
            "lastUse": None,
            "ovhSupport": False,
            "allowedIPs": None,
        }
        return json_response(body)

    async def me(request: web.Request) -> web.Response:
        return json_response(
            {
                "nichandle": "ls00000-ovh",
                "firstname": "Legion",
                "name": "Sandbox",
                "country": "FR",
                "currency": {"code": "EUR", "symbol": "EURO"},
                "ovhSubsidiary": "FR",
                "state": "complete",
            }
        )

    async def public_cloud_catalog(request: web.Request) -> web.Response:
        return json_response(order_catalog())

    return [
        web.get(f"{PREFIX}/auth/time", auth_time),
        web.get(f"{PREFIX}/auth/currentCredential", current_credential),
        web.get(f"{PREFIX}/me", me),
        web.get(f"{PREFIX}/order/catalog/public/cloud", public_cloud_catalog),
    ]
