"""Ten thousand hostile lines against a live daemon: every one is answered or refused, none is acted on.

The lines come from a seeded generator (reproducible failures): random bytes, overlong lines, deep
nesting, missing and wrong tokens, wrong field types, unknown methods, private or look-alike
engine names, and well-formed echo calls whose answer must equal what was sent. Lines that
cannot be authenticated must end their connection; authenticated mistakes must not. At the end
the daemon still serves a good request and its engine was never logged out.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from daemonkit import TOKEN, Raw, Running, call, request

from legion_nb.engine.daemon.protocol import MAX_DEPTH, MAX_LINE_BYTES

LINES = 10_000
SEED = 20261127

PRIVATE_NAMES = [
    "_store",
    "__class__",
    "__dict__",
    "__init__",
    "__getattribute__",
    "_persistence",
    "_DoubleEngine__x",
    "helper",
    "subscribe",
    "aclose",
    "release",
    "events",
    "logout ",
    " logout",
    "LOGOUT",
    "Logout",
    "logout\x00",
    "logout\n",
    "log out",
    "logout()",
    "logout;status",
    "status.__self__",
    "echo.__code__",
    "is_unlocked",
    "__reduce__",
    "__del__",
    "_",
    "",
]

WRONG: dict[str, list[Any]] = {
    "id": [1.5, True, False, [], {}, "x" * 129, 2**70, -(2**64)],
    "method": [1.5, True, [], {}, "x" * 200, 2**70, "status ", "Status", None, 3, "call\x00"],
    "params": [1.5, True, [1], "x", 2**70, 3],
}

BAD_CALLS: list[dict[str, Any]] = [
    {"name": "echo", "args": [1]},
    {"name": 5},
    {"args": {}},
    {"name": "echo", "args": {"_private": 1}},
    {"name": "echo", "args": {"a b": 1}},
    {"name": ["echo"]},
    {"name": "echo", "args": "value=1"},
]


@dataclass(frozen=True)
class Case:
    line: bytes
    closes: bool  # unauthenticated or unparseable: the daemon must hang up after its error line
    echo: Any = None  # for a good echo call: the value that must come back
    is_echo: bool = False


def encode(message: object) -> bytes:
    return json.dumps(message).encode() + b"\n"


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 6 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**62), 2**62)
    if kind == 3:
        return rng.uniform(-1e9, 1e9)
    if kind == 4:
        return "".join(rng.choice(string.printable + "é€😀\u2028") for _ in range(rng.randrange(12)))
    if kind in (5, 6):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["".join(rng.choice(string.ascii_letters) for _ in range(rng.randrange(1, 6))) for _ in range(4)]
    return {key: random_json(rng, depth + 1) for key in keys[: rng.randrange(4)]}


def cases(rng: random.Random) -> Iterator[Case]:
    huge_left = 3
    for _ in range(LINES):
        kind = rng.randrange(10)
        if kind == 0:  # random bytes (never blank: blank lines are ignored keep-alives)
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120))).replace(b"\n", b" ")
            yield Case(b"#" + raw + b"\n", closes=True)
        elif kind == 1:  # no token, or a wrong one
            message = call("logout", id=rng.randrange(100))
            if rng.random() < 0.5:
                del message["token"]
            else:
                message["token"] = rng.choice(["", TOKEN[:-1], TOKEN + "0", "x" * 64, 7, None, [TOKEN]])
            yield Case(encode(message), closes=True)
        elif kind == 2:  # nesting past the bound, authenticated or not
            depth = rng.randrange(MAX_DEPTH + 1, 3000)
            args = "[" * depth + "]" * depth
            line = (
                f'{{"id": 1, "token": "{TOKEN}", "method": "call", "params": {{"name": "echo", '
                f'"args": {{"value": {args}}}}}}}\n'
            )
            yield Case(line.encode(), closes=True)
        elif kind == 3 and huge_left:  # longer than the line cap
            huge_left -= 1
            filler = b"y" * (MAX_LINE_BYTES + rng.randrange(10))
            yield Case(b'{"id": 1, "x": "' + filler + b'"}\n', closes=True)
        elif kind == 4:  # authenticated, a wrong type or value in the envelope
            envelope = request("status")
            field = rng.choice(["id", "method", "params"])
            envelope[field] = rng.choice(WRONG[field])
            yield Case(encode(envelope), closes=False)
        elif kind == 5:  # private, unlisted or look-alike engine names
            yield Case(encode(call(rng.choice(PRIVATE_NAMES), id=rng.randrange(1000))), closes=False)
        elif kind == 6:  # call params of the wrong shape
            yield Case(encode(request("call", rng.choice(BAD_CALLS))), closes=False)
        elif kind == 7:  # random method names and subscription topics
            if rng.random() < 0.5:
                name = "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 20)))
                yield Case(encode(request(name)), closes=False)
            else:
                yield Case(
                    encode(request("subscribe", {"topics": rng.choice([[], ["x"], "snapshot", [1]])})),
                    closes=False,
                )
        else:  # well-formed calls with random JSON: the answer is the value sent
            value = random_json(rng)
            yield Case(
                encode(call("echo", id=rng.randrange(1000), value=value)),
                closes=False,
                echo=value,
                is_echo=True,
            )


async def test_ten_thousand_fuzzed_lines_leave_the_daemon_serving(daemon: Running) -> None:
    rng = random.Random(SEED)
    raw = await Raw.open(daemon.endpoint)
    counts = {"closed": 0, "refused": 0, "echoed": 0}
    for case in cases(rng):
        try:
            await raw.send(case.line)
        except ConnectionError:
            assert case.closes  # an overlong line: refused and hung up on while still being written
        reply = await raw.receive()
        assert isinstance(reply, dict), case.line[:200]
        assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
        if case.is_echo:
            assert reply == {"id": reply["id"], "result": case.echo}
            counts["echoed"] += 1
            continue
        assert set(reply["error"]) == {"code", "message"}, reply
        assert "\n" not in reply["error"]["message"]
        assert TOKEN not in reply["error"]["message"]
        counts["refused"] += 1
        if case.closes:
            assert await raw.closed_by_peer(), case.line[:200]
            await raw.close()
            raw = await Raw.open(daemon.endpoint)
            counts["closed"] += 1
    assert sum(counts.values()) - counts["closed"] == LINES
    assert min(counts.values()) > 500

    assert await raw.ask(call("status", id="after")) == {"id": "after", "result": {"servers": 0}}
    assert daemon.engine.is_unlocked
    assert not daemon.task.done()
    await raw.close()
