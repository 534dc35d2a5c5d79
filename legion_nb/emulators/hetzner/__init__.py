"""A wire-faithful Hetzner Cloud API emulator (``/v1``) that the official ``hcloud`` SDK drives unchanged.

``create_app(world)`` returns an :class:`~legion_nb.emulators.world.Emulator` whose credentials are
``{"token": ...}``; ``state_of(emulator)`` opens the emulated project (servers, firewalls, zones...)
for tests that check provider-side truth. See :mod:`legion_nb.emulators.hetzner.app` for the request pipeline.
"""

from __future__ import annotations

from legion_nb.emulators.hetzner.app import create_app, state_of
from legion_nb.emulators.hetzner.project import HetznerProject
from legion_nb.emulators.hetzner.ratelimit import RateLimit

__all__ = ["HetznerProject", "RateLimit", "create_app", "state_of"]
