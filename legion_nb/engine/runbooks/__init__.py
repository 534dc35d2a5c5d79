"""Runbooks: parameterized notebooks executed with papermill, each leaving a verifiable run record.

``catalog`` finds the shipped runbooks, ``execution`` runs one (papermill on nbclient, in a worker
thread), ``channel`` is the run's private way from the kernel back to the engine, ``records`` keeps
the append-only hash-chained records, ``service`` ties a run together and ``methods`` is the
engine's public surface for it.
"""
