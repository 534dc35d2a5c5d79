"""A warm CLI call is only cheap if reaching the daemon imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "pandas",
    "httpx",
    "aiohttp",
    "asyncssh",
    "ipywidgets",
    "anywidget",
    "cryptography",
    "argon2",
    "legion_nb.engine.runtime",
    "legion_nb.engine.state.store",
    "legion_nb.providers",
    "legion_nb.emulators",
]


def test_the_client_path_imports_nothing_heavy() -> None:
    code = (
        "import sys, json\n"
        "import legion_nb.cli.main, legion_nb.cli.daemon\n"
        "from legion_nb.engine.daemon import client, transport_unix\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=99)
    assert json.loads(out.stdout) == []
