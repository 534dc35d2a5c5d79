"""A panel's action column says what is being done while an actor does it, never ``unchanged`` or ``-``."""

from __future__ import annotations

import pytest

from legion_nb.widgets.rows import action_counts, current_operations, parse_snapshot, shown_action


@pytest.mark.parametrize(
    ("action", "operation", "shown"),
    [
        ("unchanged", "provision", "create"),
        ("unchanged", "create", "create"),
        ("", "delete", "delete"),
        ("unchanged", "", "unchanged"),
        ("update", "provision", "update"),
        ("create", "create", "create"),
        ("unchanged", "reinstall", "unchanged"),
    ],
)
def test_the_action_shown_follows_the_actor(action: str, operation: str, shown: str) -> None:
    assert shown_action(action, operation) == shown


def _row(name: str, action: str, operation: str, substage: str = "") -> dict[str, object]:
    return {
        "kind": "server",
        "name": name,
        "provider": "hetzner",
        "action": action,
        "state": "running",
        "operation": operation,
        "substage": substage,
        "waiting": "",
        "error": "",
        "settled": False,
    }


def test_panels_count_a_provisioning_server_as_a_create_and_a_reinstall_as_an_operation() -> None:
    snapshot = parse_snapshot(
        {
            "locked": False,
            "revision": 3,
            "rows": [
                _row("web-1", "unchanged", "provision"),
                _row("web-2", "unchanged", "reinstall", "kexec"),
                _row("web-3", "", "delete"),
            ],
        }
    )
    assert action_counts(snapshot.rows) == {"create": 1, "delete": 1, "unchanged": 1}
    running = current_operations(snapshot.rows)
    assert [(r["name"], r["operation"], r["substage"]) for r in running] == [
        ("web-1", "provision", ""),
        ("web-2", "reinstall", "kexec"),
        ("web-3", "delete", ""),
    ]
