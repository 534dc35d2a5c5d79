"""The emulated Instance API: ``/instance/v1/zones/{zone}/...``, one module per resource.

Behaviour that clients must handle, reproduced on purpose:

* a created server is ``stopped``; ``POST .../action {"action": "poweron"}`` starts it (``starting``,
  then ``running`` after ``timing.boot_seconds``) and answers with a ``task``, not with the server;
* names are not unique, tags are free-form strings and ``?tags=a,b`` lists servers holding all of them;
* a server in ``starting``/``stopping`` refuses actions and deletion with ``transient_state``; a running
  server cannot be deleted (use the ``terminate`` action);
* ``dynamic_ip_required`` (default true) gives the server a public address from the world's loopback
  pool, released again when the server is deleted;
* security groups carry non-editable default rules when ``enable_default_security`` is set, and
  ``PUT .../rules`` replaces only the editable ones (rules sent with ``editable: false`` are ignored);
  rule protocols are rendered upper-case (``TCP``), as the real API does.

Modules: ``zone`` (what every collection shares: the zone in every path, lookups by id within it and
the handlers' base class), ``products`` (server types), ``images``, ``servers`` (with user data and
power actions), ``security_groups`` (with their rules) and ``ips`` (flexible IPs).
"""

from __future__ import annotations

from aiohttp import web

from legion_nb.emulators.scaleway.instance import images, products
from legion_nb.emulators.scaleway.instance.ips import IpsApi
from legion_nb.emulators.scaleway.instance.security_groups import SecurityGroupsApi
from legion_nb.emulators.scaleway.instance.servers import ServersApi
from legion_nb.emulators.scaleway.store import ScalewayAccount

__all__ = ["routes"]


def routes(account: ScalewayAccount) -> list[web.RouteDef]:
    """Every route of the Instance API over ``account``."""
    return [
        *products.routes(),
        *images.routes(),
        *ServersApi(account).routes(),
        *SecurityGroupsApi(account).routes(),
        *IpsApi(account).routes(),
    ]
