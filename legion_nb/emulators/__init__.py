"""The sandbox: wire-faithful emulators of Hetzner, Scaleway and OVH on 127.0.0.1.

It is "the outside world" for Legion and imports no other legion_nb layer. Start everything with
:class:`legion_nb.emulators.cloud.SandboxCloud`; the shared core lives in :mod:`legion_nb.emulators.world`
and :mod:`legion_nb.emulators.faults`.
"""
