"""How long materializing a sandbox cluster takes when every node is really deployed.

Runs ``legion_nb.sandbox(nodes=True)`` (emulated Hetzner plus simulated nodes over real SSH and
mTLS, all on loopback), materializes N cluster nodes, and prints the wall time of the materialize
(provisioning, every deployment phase, the NBDE repairs) and the runtime's per-phase totals.

    .venv/bin/python benchmarks/deployment_e2e.py [NODES]
"""

from __future__ import annotations

import asyncio
import sys
import time

import legion_nb


async def main(count: int) -> None:
    engine = await legion_nb.sandbox(
        seed=9, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02
    )
    try:
        for index in range(1, count + 1):
            await engine.plan_upsert_server(name=f"bench-{index}", provider="hetzner", cluster="bench")
        began = time.perf_counter()
        report = await engine.materialize(settle_seconds=600)
        elapsed = time.perf_counter() - began
        mode = (await engine.nbde_status())[0]["mode"]
        print(f"materialize {count} node(s): {elapsed:.2f} s, ok={report.ok}, NBDE {mode}")
        deployment = engine.core.deployment
        assert deployment is not None
        metrics = deployment.runtime.metrics
        for phase, runs in sorted(metrics.runs.items(), key=lambda item: -metrics.seconds[item[0]]):
            print(f"  {phase:<18} runs {runs:>3}  total {metrics.seconds[phase]:7.2f} s")
    finally:
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
