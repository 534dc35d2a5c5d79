"""The Scaleway emulator: Instance, IAM SSH keys, Domains/DNS, Marketplace and Billing, on the
real wire format.

``create_app(world)`` returns the :class:`~legion_nb.emulators.world.Emulator` that
:class:`legion_nb.emulators.cloud.SandboxCloud` serves. The official ``scaleway`` SDK works against it
unchanged, with only ``api_url`` pointed at it (``prefix`` is empty: Scaleway's paths start at the
host). Every request needs ``X-Auth-Token: <secret key>``; every answer carries ``x-request-id``.

Modules: ``errors`` (error bodies), ``wire`` (bodies and paging), ``store`` (the account and its
resources), ``catalog`` (zones, types, images) and one module per API (``iam``, ``domain``,
``marketplace``, ``billing``), except ``instance``, a package with one module per resource.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Middleware

from legion_nb.emulators.faults import fault_middleware
from legion_nb.emulators.scaleway import instance
from legion_nb.emulators.scaleway.billing import BillingApi
from legion_nb.emulators.scaleway.domain import DomainApi
from legion_nb.emulators.scaleway.errors import Handler, ScwApiError, error_middleware, fault_body
from legion_nb.emulators.scaleway.iam import IamApi
from legion_nb.emulators.scaleway.marketplace import MarketplaceApi
from legion_nb.emulators.scaleway.store import DEFAULT_SERVERS_PER_ZONE, ScalewayAccount
from legion_nb.emulators.world import Emulator, SandboxWorld

__all__ = ["DEFAULT_ZONE", "create_app"]

DEFAULT_ZONE = "fr-par-1"
ACCOUNT_KEY: web.AppKey[ScalewayAccount] = web.AppKey("scaleway_account", ScalewayAccount)


def _auth_middleware(account: ScalewayAccount) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = request.headers.get("X-Auth-Token", "")
        if not token:
            raise ScwApiError(
                401,
                "denied_authentication",
                "authentication is denied",
                method="unknown_method",
                reason="invalid_argument",
            )
        if not hmac.compare_digest(token.encode(), account.secret_key.encode()):
            raise ScwApiError(
                401, "denied_authentication", "authentication is denied", method="api_key", reason="not_found"
            )
        return await handler(request)

    return middleware


def create_app(world: SandboxWorld, *, servers_per_zone: int = DEFAULT_SERVERS_PER_ZONE) -> Emulator:
    """Build the Scaleway emulator over ``world`` (see the module docstring); ``servers_per_zone`` is
    the Instance quota after which creates answer ``quotas_exceeded``."""
    account = ScalewayAccount(world, servers_per_zone=servers_per_zone)
    app = web.Application(
        middlewares=[
            fault_middleware("scaleway", world, fault_body),
            error_middleware,
            _auth_middleware(account),
        ]
    )
    app[ACCOUNT_KEY] = account
    app.add_routes(instance.routes(account))
    app.add_routes(IamApi(account).routes())
    app.add_routes(DomainApi(account).routes())
    app.add_routes(MarketplaceApi().routes())
    app.add_routes(BillingApi(account).routes())
    credentials = {
        "access_key": account.access_key,
        "secret_key": account.secret_key,
        "project_id": account.project_id,
        "organization_id": account.organization_id,
        "zone": DEFAULT_ZONE,
    }
    return Emulator(name="scaleway", app=app, credentials=credentials, prefix="")
