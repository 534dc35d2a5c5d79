"""Figures for the Hetzner emulator: request throughput and overlapped provisioning.

Prints numbers, asserts nothing. Run: ``.venv/bin/python benchmarks/sandbox_hetzner.py``.

* throughput: GET /servers (25 servers on the page) and GET /actions/{id}, 8 concurrent clients;
* provisioning: N servers created back to back, then all actions polled together until done; the wall
  time should be about one provisioning time (action + boot) plus N short calls, not N times it.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from legion_nb.emulators.hetzner import RateLimit, create_app
from legion_nb.emulators.httpkit import serve_app
from legion_nb.emulators.world import SandboxWorld, Timing

SERVERS = 25
REQUESTS = 2000
CONCURRENCY = 8


async def main() -> None:
    world = SandboxWorld(1, timing=Timing(action_seconds=0.5, boot_seconds=0.5))
    emulator = create_app(world, rate_limit=RateLimit(capacity=0))
    served = await serve_app(emulator.app)
    headers = {"Authorization": f"Bearer {emulator.credentials['token']}"}
    try:
        async with httpx.AsyncClient(base_url=served.base_url("/v1"), headers=headers) as client:
            started = time.perf_counter()
            replies = [
                (
                    await client.post(
                        "/servers", json={"name": f"bench-{i}", "server_type": "cx22", "image": "debian-12"}
                    )
                ).json()
                for i in range(SERVERS)
            ]
            created = time.perf_counter() - started
            ids = [a["id"] for r in replies for a in [r["action"], *r["next_actions"]]]
            polls = 0
            while True:
                polls += 1
                params = [("id", str(i)) for i in ids]
                actions: list[dict[str, object]] = []
                for page in (1, 2):
                    body = (
                        await client.get(
                            "/actions", params=[*params, ("page", str(page)), ("per_page", "50")]
                        )
                    ).json()
                    actions += body["actions"]
                if all(a["status"] == "success" for a in actions):
                    break
                await asyncio.sleep(0.1)
            settled = time.perf_counter() - started
            one = world.timing.action_seconds + world.timing.boot_seconds
            print(
                f"provisioning: {SERVERS} servers created in {created:.3f}s, "
                f"all running after {settled:.3f}s (one provisioning = {one:.1f}s; "
                f"serial would be {SERVERS * one:.1f}s); {polls} poll rounds"
            )

            async def hammer(path: str, count: int) -> None:
                for _ in range(count):
                    response = await client.get(path)
                    response.raise_for_status()

            for path in ("/servers", f"/actions/{ids[0]}"):
                started = time.perf_counter()
                await asyncio.gather(*(hammer(path, REQUESTS // CONCURRENCY) for _ in range(CONCURRENCY)))
                elapsed = time.perf_counter() - started
                print(
                    f"throughput: GET {path}: {REQUESTS / elapsed:.0f} requests/s "
                    f"({CONCURRENCY} concurrent clients, {REQUESTS} requests)"
                )
        print(f"requests counted: {world.counters.total('hetzner')}")
    finally:
        await served.aclose()
        await world.aclose()


if __name__ == "__main__":
    asyncio.run(main())
