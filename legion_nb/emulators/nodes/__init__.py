"""Simulated servers for the sandbox: real SSH and mTLS HTTPS on each server's 127.x address.

* :class:`~legion_nb.emulators.nodes.node.SimulatedNode` - one machine (SSH server, shell, install
  phases with the host-key swap, admin API with Tang advertisement).
* :class:`~legion_nb.emulators.nodes.fleet.NodeFleet` - nodes for a set of addresses.
* :mod:`~legion_nb.emulators.nodes.shell` - the command vocabulary, including ``legion-node`` steps.

Like the rest of the sandbox this imports no other legion_nb layer: it is the outside world.
"""

from __future__ import annotations

from legion_nb.emulators.nodes.fleet import NodeFleet
from legion_nb.emulators.nodes.node import SimulatedNode
from legion_nb.emulators.nodes.system import FaultPlan, NodeTiming

__all__ = ["FaultPlan", "NodeFleet", "NodeTiming", "SimulatedNode"]
