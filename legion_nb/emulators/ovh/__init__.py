"""The OVHcloud API emulator: signed requests, Public Cloud instances (classic and regional/operation
creates), SSH keys, catalog and prices, DNS zones with publication on refresh, bills and usage.

``create_app(world)`` returns the :class:`legion_nb.emulators.world.Emulator` that
:class:`legion_nb.emulators.cloud.SandboxCloud` serves under ``/1.0``; the official ``ovh`` SDK drives
it unchanged once its endpoint table names the sandbox URL. ``state_of(emulator)`` opens the emulated
world for tests (published DNS records, extra consumer keys).
"""

from __future__ import annotations

from legion_nb.emulators.ovh.app import PREFIX, OvhState, create_app, state_of
from legion_nb.emulators.ovh.dns import DEFAULT_ZONES

__all__ = ["DEFAULT_ZONES", "PREFIX", "OvhState", "create_app", "state_of"]
