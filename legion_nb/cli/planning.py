"""``legion plan ...`` and ``legion diff``: edit and read the planned scheme.

Editing a plan never touches a cloud resource; ``legion materialize`` does. Omitted server choices
(type, location, image) stay empty in the plan and show as ``(policy)``: the provider catalog policy
fills them in at materialization.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext, one_shot
from legion_nb.cli.tables import Column, money, table, warning_lines
from legion_nb.errors import UsageError

if TYPE_CHECKING:
    from legion_nb.engine.results import Removed
    from legion_nb.engine.surface import EngineAPI

__all__ = ["register"]

_ACTIONS = ("add", "remove")


def register(sub: Any) -> None:
    plan = sub.add_parser("plan", help="edit or show the planned scheme (no cloud calls)")
    kinds = plan.add_subparsers(dest="plan_kind", metavar="KIND")

    server = _kind(kinds, "server", "NAME", "a server (a one-node cluster unless --cluster groups it)")
    server.add_argument("--server-type", metavar="T", help="provider server type (default: catalog policy)")
    server.add_argument("--location", metavar="L", help="provider location (default: catalog policy)")
    server.add_argument("--image", metavar="I", help="OS image (default: catalog policy)")
    server.add_argument(
        "--cluster", metavar="C", help="cluster name (default: the current one, else 'default')"
    )
    server.add_argument("--role", choices=("cluster", "satellite"), default="cluster", help="node role")
    server.set_defaults(handler=_server)

    zone = _kind(kinds, "dns-zone", "ZONE", "a DNS zone hosted at a provider")
    zone.set_defaults(
        handler=_provider_resource(
            lambda api, name, provider: api.plan_upsert_dns_zone(zone=name, provider=provider),
            lambda api, name: api.plan_remove_dns_zone(zone=name),
            "zone",
            "DNS zone",
        )
    )

    host = _kind(
        kinds, "dns-host", "HOST", "a name in a zone pointing at servers (add = upsert)", provider=False
    )
    host.add_argument("--zone", metavar="ZONE", required=True, help="the planned zone the host lives in")
    host.add_argument("--servers", metavar="A,B", default="", help="comma-separated planned server names")
    host.set_defaults(handler=_dns_host)

    domain = _kind(kinds, "domain", "NAME", "a registered domain looked after at a provider")
    domain.set_defaults(
        handler=_provider_resource(
            lambda api, name, provider: api.plan_upsert_domain(name=name, provider=provider),
            lambda api, name: api.plan_remove_domain(name=name),
            "name",
            "domain",
        )
    )

    firewall = _kind(kinds, "firewall", "NAME", "a provider firewall guarding planned servers")
    firewall.add_argument(
        "--rule",
        metavar="'DIR PROTO [PORT] ADDR...'",
        action="append",
        default=[],
        help="repeatable, e.g. --rule 'in tcp 22 0.0.0.0/0 ::/0' --rule 'in icmp 0.0.0.0/0'",
    )
    firewall.add_argument("--servers", metavar="A,B", default="", help="comma-separated planned server names")
    firewall.set_defaults(handler=_firewall)

    access = kinds.add_parser("access", help="who may reach SSH and the node admin API (operator CIDRs)")
    access_actions = access.add_subparsers(dest="access_action", metavar="ACTION", required=True)
    access_set = access_actions.add_parser(
        "set", help="open SSH (22) and the admin API (8443) only to these CIDRs on every cluster firewall"
    )
    access_set.add_argument(
        "--operator-cidr",
        metavar="CIDR",
        action="append",
        required=True,
        help="repeatable, e.g. --operator-cidr 203.0.113.7/32 --operator-cidr 2001:db8::/48",
    )
    access_set.set_defaults(handler=_access_set)
    access_clear = access_actions.add_parser(
        "clear", help="forget them (LEGION_OPERATOR_CIDRS, else anywhere with a warning)"
    )
    access_clear.set_defaults(handler=_access_clear)

    show = kinds.add_parser("show", help="the planned scheme")
    show.set_defaults(handler=_show)

    diff = sub.add_parser("diff", help="planned vs tracked vs observed, with the action per resource")
    diff.add_argument("--fields", action="store_true", help="also list every field in the three views")
    diff.set_defaults(handler=_diff)


def _kind(kinds: Any, name: str, metavar: str, help_text: str, *, provider: bool = True) -> Any:
    parser = kinds.add_parser(name, help=help_text)
    parser.add_argument("action", choices=_ACTIONS, help="add (or change) / remove")
    parser.add_argument("name", metavar=metavar)
    if provider:
        parser.add_argument("--provider", metavar="P", help="hetzner, ovh or scaleway (needed to add)")
    return parser


def _provider(args: argparse.Namespace) -> str:
    if not args.provider:
        raise UsageError(f"'plan {args.plan_kind} add' needs --provider (hetzner, ovh or scaleway)")
    return str(args.provider)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


async def _call(ctx: CliContext, call: Callable[[EngineAPI], Awaitable[Any]]) -> Any:
    async with ctx.api() as api:
        return await call(api)


def _removed(result: dict[str, str]) -> str:
    return f"removed {result['removed'].replace('_', ' ')} {result['name']} from the plan"


@one_shot
async def _server(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.action == "remove":
        ctx.emit(await _call(ctx, lambda api: api.plan_remove_server(name=args.name)), _removed)
        return 0
    provider = _provider(args)
    explicit = bool(args.server_type or args.location or args.image)

    async def plan(api: EngineAPI) -> dict[str, Any]:
        planned = await api.plan_upsert_server(
            name=args.name,
            provider=provider,
            server_type=args.server_type,
            location=args.location,
            image=args.image,
            cluster=args.cluster,
            role=args.role,
        )
        result: dict[str, Any] = _jsonable(planned)
        # Only an explicit choice can miss the catalog; then the diff's row says so, as it will later.
        diff = _jsonable(await api.diff()) if explicit else {"resources": []}
        return {**result, "warnings": _server_warnings(diff, result["name"])}

    ctx.emit(await _call(ctx, plan), _planned_server)
    return 0


def _jsonable(value: Any) -> Any:
    """A local engine's result as the daemon sends it (plain JSON)."""
    from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415 - argparse-level imports only

    return to_jsonable(value)


def _server_warnings(diff: dict[str, Any], name: str) -> list[dict[str, str]]:
    """The warnings the diff's row of planned server ``name`` carries (``not_in_catalog``, say)."""
    row = next((r for r in diff["resources"] if r["kind"] == "server" and r["name"] == name), None)
    return list(row.get("warnings") or ()) if row is not None else []


def _planned_server(r: dict[str, Any]) -> str:
    """The plan line, then a ``warning:`` line per warning, as ``legion diff`` prints them."""
    line = (
        f"planned server {r['name']} on {r['provider']}: type {_policy(r['server_type'])}, "
        f"location {_policy(r['location'])}, image {_policy(r['image'])}, role {r['role']}"
    )
    return "\n".join((line, *warning_lines([{"kind": "server", **r}])))


def _policy(value: str | None) -> str:
    return value or "(policy)"


@one_shot
async def _dns_host(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.action == "remove":
        result = await _call(ctx, lambda api: api.plan_remove_dns_host(host=args.name, zone=args.zone))
        ctx.emit(result, lambda r: f"removed DNS host {r['name']} in {r['zone']} from the plan")
        return 0
    servers = _names(args.servers)
    result = await _call(
        ctx, lambda api: api.plan_upsert_dns_host(host=args.name, zone=args.zone, servers=servers)
    )
    ctx.emit(result, lambda r: f"planned DNS host {r['host']} in {r['zone']} -> {', '.join(r['servers'])}")
    return 0


def _provider_resource(
    upsert: Callable[[EngineAPI, str, str], Awaitable[Any]],
    remove: Callable[[EngineAPI, str], Awaitable[Removed]],
    key: str,
    label: str,
) -> Any:
    """The handler of a resource identified by one name at one provider (DNS zone, domain)."""

    @one_shot
    async def handle(ctx: CliContext, args: argparse.Namespace) -> int:
        if args.action == "remove":
            ctx.emit(await _call(ctx, lambda api: remove(api, args.name)), _removed)
            return 0
        provider = _provider(args)
        result = await _call(ctx, lambda api: upsert(api, args.name, provider))
        ctx.emit(result, lambda r: f"planned {label} {r[key]} on {r['provider']}")
        return 0

    return handle


@one_shot
async def _firewall(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.action == "remove":
        ctx.emit(await _call(ctx, lambda api: api.plan_remove_firewall(name=args.name)), _removed)
        return 0
    provider = _provider(args)
    result = await _call(
        ctx,
        lambda api: api.plan_upsert_firewall(
            name=args.name, provider=provider, rules=list(args.rule), servers=_names(args.servers)
        ),
    )
    ctx.emit(
        result,
        lambda r: (
            f"planned firewall {r['name']} on {r['provider']}: {len(r['rules'])} rule(s), "
            f"servers {', '.join(r['servers']) or '(none)'}"
        ),
    )
    return 0


def _access(result: dict[str, Any]) -> str:
    cidrs = result["operator_cidrs"]
    if not cidrs:
        return "no operator CIDRs planned: SSH and the admin API follow LEGION_OPERATOR_CIDRS, else anywhere"
    return f"SSH and the admin API open only to {', '.join(cidrs)} (see 'legion diff')"


async def _access_set(ctx: CliContext, args: argparse.Namespace) -> int:
    cidrs = list(args.operator_cidr)
    ctx.emit(await _call(ctx, lambda api: api.plan_set_operator_cidrs(cidrs=cidrs)), _access)
    return 0


async def _access_clear(ctx: CliContext, _: argparse.Namespace) -> int:
    ctx.emit(await _call(ctx, lambda api: api.plan_clear_operator_cidrs()), _access)
    return 0


@one_shot
async def _show(ctx: CliContext, _: argparse.Namespace) -> int:
    ctx.emit(await _call(ctx, lambda api: api.plan_show()), render_scheme)
    return 0


# The plan's and the diff's tables (tables.py: declared widths; the last column is whole).
_NAME = Column("NAME", 28)
_PROVIDER = Column("PROVIDER", 8)
_DIFF = (Column("ACTION", 9), Column("KIND", 11), _NAME, _PROVIDER, Column("DETAIL"))  # KIND fits floating_ip
_SERVERS = (
    _NAME,
    Column("CLUSTER", 12),
    _PROVIDER,
    Column("TYPE", 12),
    Column("LOCATION", 10),
    Column("IMAGE", 16),
    Column("ROLE"),
)
_FIELDS = (Column("FIELD", 16), Column("PLANNED", 40), Column("TRACKED", 40), Column("OBSERVED"))


def render_scheme(scheme: dict[str, Any]) -> str:
    servers = [
        (
            s["name"],
            cluster["name"],
            s["provider"],
            _policy(s["server_type"]),
            _policy(s["location"]),
            _policy(s["image"]),
            s["role"],
        )
        for cluster in scheme["clusters"].values()
        for s in cluster["servers"].values()
    ]
    sections: list[tuple[str, tuple[Column, ...], list[tuple[Any, ...]]]] = [
        (
            "SERVERS",
            _SERVERS,
            servers,
        ),
        (
            "DNS ZONES",
            (Column("ZONE", 28), Column("PROVIDER")),
            [(z["zone"], z["provider"]) for z in scheme["dns_zones"].values()],
        ),
        (
            "DNS HOSTS",
            (Column("HOST", 28), Column("ZONE", 24), Column("SERVERS")),
            [(fqdn, h["zone"], ", ".join(h["servers"])) for fqdn, h in scheme["dns_hosts"].items()],
        ),
        (
            "DOMAINS",
            (Column("DOMAIN", 28), Column("PROVIDER")),
            [(d["name"], d["provider"]) for d in scheme["domains"].values()],
        ),
        (
            "FIREWALLS",
            (Column("FIREWALL", 28), _PROVIDER, Column("SERVERS", 30), Column("RULES")),
            [
                (f["name"], f["provider"], ", ".join(f["servers"]), "; ".join(_rule(r) for r in f["rules"]))
                for f in scheme["firewalls"].values()
            ],
        ),
        (
            "OPERATOR ACCESS (SSH, ADMIN API)",
            (Column("CIDR"),),
            [(cidr,) for cidr in scheme.get("access", {}).get("operator_cidrs", ())],
        ),
    ]
    text = [table(headers, sorted(rows), title=title) for title, headers, rows in sections if rows]
    if not text:
        return "the plan is empty: add to it with 'legion plan server add NAME --provider P' and friends"
    return "\n\n".join(text)


def _rule(rule: dict[str, Any]) -> str:
    return " ".join(filter(None, (rule["direction"], rule["protocol"], rule["port"], *rule["sources"])))


@one_shot
async def _diff(ctx: CliContext, args: argparse.Namespace) -> int:
    result = await _call(ctx, lambda api: api.diff())
    ctx.emit(result, lambda d: render_diff(d, fields=args.fields))
    return 0


def render_diff(data: dict[str, Any], *, fields: bool = False) -> str:
    resources = data["resources"]
    if not resources:
        return "nothing planned, tracked or observed"
    rows = [(r["action"], r["kind"], r["name"], r["provider"], _summary(r)) for r in resources]
    out = [table(_DIFF, rows)]
    warnings = warning_lines(resources)
    if warnings:
        out.append("\n".join(warnings))
    if fields:
        for r in resources:
            field_rows = [
                (("* " if f["changed"] else "  ") + f["field"], f["planned"], f["tracked"], f["observed"])
                for f in r["fields"]
            ]
            out.append(
                table(
                    _FIELDS,
                    field_rows,
                    title=f"{r['kind']} {r['name']} ({r['action']})",
                )
            )
    cost = data.get("cost")
    if cost and cost.get("currencies"):
        out.append(
            table(
                (Column("NOW", 20), Column("PLANNED", 20), Column("CHANGE")),
                [_cost_row(c) for c in cost["currencies"]],
                title="MONTHLY COST",
            )
        )
        if cost.get("unpriced"):
            out.append(_unpriced_line(cost["unpriced"], resources))
    counts = data["counts"]
    out.append(", ".join(f"{n} {a}" for a, n in sorted(counts.items())))
    return "\n\n".join(out)


def _unpriced_line(unpriced: list[str], resources: list[dict[str, Any]]) -> str:
    """The servers left out of the totals; one whose choice the catalog lacks points at its warning
    (which says what is missing) instead of blaming a price."""
    lacking = {
        r["name"]
        for r in resources
        if r["kind"] == "server" and any(w["code"] == "not_in_catalog" for w in r.get("warnings") or ())
    }
    names = [f"{name} (see its warning)" if name in lacking else name for name in unpriced]
    return f"not priced, so left out of the totals: {', '.join(names)}"


def _cost_row(cost: dict[str, str]) -> tuple[str, str, str]:
    """One currency's monthly cost as money; the change carries its sign so a saving reads as one."""
    currency = cost["currency"]
    change = money(cost["change"], currency, "/month")
    return (
        money(cost["now"], currency, "/month"),
        money(cost["planned"], currency, "/month"),
        change if change.startswith("-") else f"+{change}",
    )


def _summary(resource: dict[str, Any]) -> str:
    """One line per resource: what differs for updates, the planned choices for creates."""
    action = resource["action"]
    fields = resource["fields"]
    if action == "update":
        text = ", ".join(f"{f['field']}: {f['tracked']} -> {f['planned']}" for f in fields if f["changed"])
    elif action in ("create", "adopt"):
        text = ", ".join(
            f"{f['field']}={f['planned']}"
            for f in fields
            if f["planned"] is not None and f["field"] != "provider"
        )
    elif action in ("delete", "orphan"):
        ident = next((f["tracked"] or f["observed"] for f in fields if f["field"] == "provider_id"), None)
        text = f"provider id {ident}" if ident else ""
    else:
        text = ""
    note = resource.get("note") or ""
    return "; ".join(filter(None, (note, text)))
