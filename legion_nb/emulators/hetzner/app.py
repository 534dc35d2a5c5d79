"""Assembles the Hetzner Cloud emulator: routes, auth, rate limit, correlation ids, errors, faults.

Middleware order, outermost first:

1. ``envelope``: every response gets ``X-Correlation-Id`` and the ``RateLimit-*`` headers; router
   errors (unknown path 404, wrong method 405) and auth errors become Hetzner error bodies.
2. ``fault_middleware`` (shared): latency, request counting, injected 429/5xx/drops.
3. ``guard``: bearer token (401 ``unauthorized``; the read-only token gets 401 ``token_readonly`` on
   writes) and the token bucket (429 ``rate_limit_exceeded``).
4. ``errors``: handler :class:`~legion_nb.emulators.hetzner.wire.ApiError` -> error body, inside the fault
   layer so that a dropped-after-commit request drops whatever the handler answered.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from legion_nb.emulators.faults import Handler, fault_middleware
from legion_nb.emulators.hetzner.catalog import IMAGES, LOCATIONS, SERVER_TYPES, pricing
from legion_nb.emulators.hetzner.firewalls import FirewallsApi
from legion_nb.emulators.hetzner.floating_ips import FloatingIpsApi
from legion_nb.emulators.hetzner.labels import filter_by_selector
from legion_nb.emulators.hetzner.primary_ips import PrimaryIpsApi
from legion_nb.emulators.hetzner.project import HetznerProject
from legion_nb.emulators.hetzner.ratelimit import RateLimit, TokenBucket
from legion_nb.emulators.hetzner.servers import ServersApi
from legion_nb.emulators.hetzner.ssh_keys import SshKeysApi
from legion_nb.emulators.hetzner.wire import ApiError, Json, error_response, not_found, page_of, sort_items
from legion_nb.emulators.hetzner.zones import ZonesApi
from legion_nb.emulators.world import Emulator, SandboxWorld

__all__ = ["PROJECT", "READONLY_TOKEN", "create_app", "state_of"]

PREFIX = "/v1"
PROJECT = web.AppKey("hetzner_project", HetznerProject)
READONLY_TOKEN = web.AppKey("hetzner_readonly_token", str)
_FAULT_CODES = {429: "rate_limit_exceeded", 500: "server_error", 502: "bad_gateway", 503: "unavailable"}
_ACTION_KINDS = {
    "servers": "server",
    "firewalls": "firewall",
    "floating_ips": "floating_ip",
    "primary_ips": "primary_ip",
    "zones": "zone",
}
_READS = ("GET", "HEAD", "OPTIONS")
_ROUTER_CODES = {404: "not_found", 405: "method_not_allowed"}


def _fault_body(status: int, kind: str) -> web.Response:
    code = _FAULT_CODES.get(status, "server_error")
    message = "rate limit exceeded" if status == 429 else "the sandbox injected a fault; retry later"
    return error_response(status, code, message)


def _render(exc: ApiError) -> web.Response:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def create_app(world: SandboxWorld, *, rate_limit: RateLimit | None = None) -> Emulator:
    """Build the emulator; the token in ``credentials`` is what ``hcloud.Client(token=...)`` needs."""
    project = HetznerProject(world)
    token = world.new_secret(48)
    readonly = world.new_secret(48)
    bucket = TokenBucket(rate_limit or RateLimit())

    @web.middleware
    async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _render(exc)
        except web.HTTPException as exc:
            code = _ROUTER_CODES.get(exc.status, "invalid_input")
            response = error_response(exc.status, code, exc.reason)
        response.headers["X-Correlation-Id"] = world.random_token(8)
        for name, value in bucket.headers().items():
            response.headers.setdefault(name, value)
        return response

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        is_readonly = secrets.compare_digest(presented.encode(), readonly.encode())
        if scheme.lower() != "bearer" or not (
            secrets.compare_digest(presented.encode(), token.encode()) or is_readonly
        ):
            raise ApiError(401, "unauthorized", "unable to authenticate")
        if is_readonly and request.method not in _READS:
            raise ApiError(401, "token_readonly", "the token is read-only; use a read & write token")
        if not bucket.take():
            raise ApiError(429, "rate_limit_exceeded", "rate limit exceeded; wait for RateLimit-Reset")
        return await handler(request)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return _render(exc)

    app = web.Application(
        middlewares=[envelope, fault_middleware("hetzner", world, _fault_body), guard, errors]
    )
    app[PROJECT] = project
    app[READONLY_TOKEN] = readonly
    zones = ZonesApi(project)
    app.router.add_routes(_action_routes(project))
    app.router.add_routes(_catalog_routes())
    for api in (
        ServersApi(project),
        SshKeysApi(project),
        FirewallsApi(project),
        FloatingIpsApi(project),
        PrimaryIpsApi(project),
        zones,
    ):
        app.router.add_routes(api.routes(PREFIX))
    return Emulator(name="hetzner", app=app, credentials={"token": token}, prefix=PREFIX)


def state_of(emulator: Emulator) -> HetznerProject:
    """The emulated project behind ``emulator``: tests and benchmarks read provider-side truth here.

    Touch it only from the emulator's own event loop (it is not thread-safe).
    """
    return emulator.app[PROJECT]


def _action_routes(project: HetznerProject) -> list[web.RouteDef]:
    """``/actions`` plus the per-resource action lists (registered before ``/<kind>/{id}``)."""

    def listing(request: web.Request, actions: list[Json]) -> web.Response:
        statuses = request.query.getall("status", [])
        if statuses:
            actions = [a for a in actions if a["status"] in statuses]
        return page_of(
            request,
            sort_items(request, actions, ("id", "command", "status", "started", "finished")),
            "actions",
        )

    def by_ids(request: web.Request) -> list[Json]:
        try:
            ids = [int(v) for v in request.query.getall("id", [])]
        except ValueError:
            raise ApiError(400, "invalid_input", "query parameter 'id' must be an integer") from None
        return [a.wire() for a in project.actions.all() if a.id in ids]

    async def list_actions(request: web.Request) -> web.Response:
        if "id" not in request.query:
            raise ApiError(400, "invalid_input", "the 'id' filter is required when listing actions")
        return listing(request, by_ids(request))

    async def get_action(request: web.Request) -> web.Response:
        raw = request.match_info["action_id"]
        action = project.actions.get(int(raw)) if raw.isdigit() else None
        if action is None:
            raise not_found("action", raw)
        return web.json_response({"action": action.wire()})

    def resource_id(kind: str, raw: str) -> int:
        if kind == "zones" and not raw.isdigit():
            for zone in project.zones.values():
                if zone.name == raw:
                    return zone.id
            raise not_found("zone", raw)
        if not raw.isdigit():
            raise not_found(_ACTION_KINDS[kind], raw)
        return int(raw)

    def per_kind(kind: str) -> list[web.RouteDef]:
        rtype = _ACTION_KINDS[kind]

        async def of_kind(request: web.Request) -> web.Response:
            actions = [
                a.wire() for a in project.actions.all() if any(r["type"] == rtype for r in a.resources)
            ]
            if "id" in request.query:
                wanted = {a["id"] for a in by_ids(request)}
                actions = [a for a in actions if a["id"] in wanted]
            return listing(request, actions)

        async def of_resource(request: web.Request) -> web.Response:
            rid = resource_id(kind, request.match_info["id"])
            return listing(request, [a.wire() for a in project.actions.all() if a.touches(rtype, rid)])

        async def one_of_resource(request: web.Request) -> web.Response:
            rid = resource_id(kind, request.match_info["id"])
            raw = request.match_info["action_id"]
            action = project.actions.get(int(raw)) if raw.isdigit() else None
            if action is None or not action.touches(rtype, rid):
                raise not_found("action", raw)
            return web.json_response({"action": action.wire()})

        return [
            web.get(f"{PREFIX}/{kind}/actions", of_kind),
            web.get(f"{PREFIX}/{kind}/actions/{{action_id}}", get_action),
            web.get(f"{PREFIX}/{kind}/{{id}}/actions", of_resource),
            web.get(f"{PREFIX}/{kind}/{{id}}/actions/{{action_id}}", one_of_resource),
        ]

    routes = [
        web.get(f"{PREFIX}/actions", list_actions),
        web.get(f"{PREFIX}/actions/{{action_id}}", get_action),
    ]
    for kind in _ACTION_KINDS:
        routes += per_kind(kind)
    return routes


def _catalog_routes() -> list[web.RouteDef]:
    def by_id_or_404(kind: str, items: list[Json], raw: str) -> Json:
        for item in items:
            if str(item["id"]) == raw:
                return item
        raise not_found(kind, raw)

    def named(request: web.Request, items: list[Json]) -> list[Json]:
        name = request.query.get("name")
        return [i for i in items if name is None or i["name"] == name]

    async def server_types(request: web.Request) -> web.Response:
        return page_of(request, named(request, [st.wire() for st in SERVER_TYPES]), "server_types")

    async def server_type(request: web.Request) -> web.Response:
        items = [st.wire() for st in SERVER_TYPES]
        return web.json_response(
            {"server_type": by_id_or_404("server_type", items, request.match_info["id"])}
        )

    async def locations(request: web.Request) -> web.Response:
        return page_of(request, named(request, [loc.wire() for loc in LOCATIONS]), "locations")

    async def location(request: web.Request) -> web.Response:
        items = [loc.wire() for loc in LOCATIONS]
        return web.json_response({"location": by_id_or_404("location", items, request.match_info["id"])})

    async def images(request: web.Request) -> web.Response:
        items = named(request, [image.wire() for image in IMAGES])
        types = request.query.getall("type", [])
        if types:
            items = [i for i in items if i["type"] in types]
        architecture = request.query.getall("architecture", [])
        if architecture:
            items = [i for i in items if i["architecture"] in architecture]
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("id", "name", "created")), "images")

    async def image(request: web.Request) -> web.Response:
        items = [image.wire() for image in IMAGES]
        return web.json_response({"image": by_id_or_404("image", items, request.match_info["id"])})

    async def get_pricing(request: web.Request) -> web.Response:
        return web.json_response({"pricing": pricing()})

    return [
        web.get(f"{PREFIX}/server_types", server_types),
        web.get(f"{PREFIX}/server_types/{{id}}", server_type),
        web.get(f"{PREFIX}/locations", locations),
        web.get(f"{PREFIX}/locations/{{id}}", location),
        web.get(f"{PREFIX}/images", images),
        web.get(f"{PREFIX}/images/{{id}}", image),
        web.get(f"{PREFIX}/pricing", get_pricing),
    ]
