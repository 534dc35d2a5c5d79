"""Pinned-host-key SSH against a real asyncssh server (a simulated node on 127.77.0.2)."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.deployment.security import SshKeyPair
from legion_nb.engine.ssh import (
    HostKeyMismatchError,
    NodeAuthError,
    NodeCommandError,
    NodeUnreachableError,
    ReconnectPolicy,
    SshOptions,
    SshTarget,
    connect,
    connect_with_retry,
    key_fingerprint,
    scan_host_key,
)
from legion_nb.errors import NodeError


async def test_runs_commands_over_the_pinned_connection(root_target: SshTarget) -> None:
    async with await connect(root_target) as conn:
        assert (await conn.run("hostname")).stdout == "n1\n"
        assert (await conn.run("echo hello   world")).stdout == "hello world\n"
        failed = await conn.run("no-such-tool")
        assert (failed.exit_status, failed.stderr) == (127, "sh: no-such-tool: command not found\n")
        assert await conn.check("whoami") == "root\n"
        with pytest.raises(NodeCommandError, match=r"node n1: 'false' exited 1"):
            await conn.check("false")


async def test_changed_host_key_is_refused_naming_both_fingerprints(root_target: SshTarget) -> None:
    impostor_pin = SshKeyPair.generate().public_openssh
    with pytest.raises(HostKeyMismatchError) as info:
        await connect(dataclasses.replace(root_target, pinned_host_key=impostor_pin))
    error = info.value
    assert error.presented == key_fingerprint(root_target.pinned_host_key)
    assert error.expected == key_fingerprint(impostor_pin)
    message = str(error)
    assert "node n1" in message and error.presented in message and error.expected in message
    assert "\n" not in message and isinstance(error, NodeError) and error.exit_code == 7


async def test_host_key_of_another_type_is_a_mismatch_too(root_target: SshTarget) -> None:
    ecdsa_pin = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    with pytest.raises(HostKeyMismatchError, match="presented host key a key of another type"):
        await connect(dataclasses.replace(root_target, pinned_host_key=ecdsa_pin))


async def test_unknown_client_key_is_refused(root_target: SshTarget) -> None:
    stranger = SshKeyPair.generate().private_openssh
    with pytest.raises(NodeAuthError, match="refused Legion's SSH key for user root"):
        await connect(dataclasses.replace(root_target, client_key=stranger))


async def test_closed_port_is_unreachable_and_retried_per_policy(root_target: SshTarget) -> None:
    target = dataclasses.replace(root_target, host="127.77.0.250")
    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)

    policy = ReconnectPolicy(attempts=4, initial_delay=1.0, max_delay=3.0, factor=2.0)
    with pytest.raises(NodeUnreachableError, match="is not accepting SSH") as info:
        await connect_with_retry(target, policy, sleep=fake_sleep)
    assert pauses == [1.0, 2.0, 3.0]
    assert info.value.temporary


async def test_mismatch_is_never_retried(root_target: SshTarget) -> None:
    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)

    target = dataclasses.replace(root_target, pinned_host_key=SshKeyPair.generate().public_openssh)
    with pytest.raises(HostKeyMismatchError):
        await connect_with_retry(target, ReconnectPolicy(attempts=5), sleep=fake_sleep)
    assert pauses == []


async def test_reconnects_across_a_reboot(
    node: SimulatedNode, root_target: SshTarget, quick_retry: ReconnectPolicy
) -> None:
    async with await connect(root_target) as conn:
        assert (await conn.run("reboot")).exit_status == 0
        await conn.wait_closed()
    async with await connect_with_retry(root_target, quick_retry) as again:
        assert (await again.run("hostname")).stdout == "n1\n"
    assert node.boots == 1


async def test_command_time_limit_is_unreachable(node: SimulatedNode, root_target: SshTarget) -> None:
    node.timing.install = 5.0
    node.system.phase = "installer"  # as if kexec'd, with Legion's host key staged
    node.system.files["/etc/ssh/ssh_host_ed25519_key"] = SshKeyPair.generate().private_openssh
    async with await connect(root_target, SshOptions(command_timeout=0.05)) as conn:
        with pytest.raises(NodeUnreachableError, match="'legion-node install' timed out"):
            await conn.run("legion-node install")


async def test_scan_host_key_reads_the_presented_key(node: SimulatedNode) -> None:
    assert await scan_host_key("n1", node.address, node.ssh_port) == node.host_public_key


def test_garbage_keys_are_named_errors(root_target: SshTarget) -> None:
    with pytest.raises(NodeError, match="not an OpenSSH public key"):
        key_fingerprint("not a key")


async def test_unreadable_client_key_is_named(root_target: SshTarget) -> None:
    with pytest.raises(NodeAuthError, match="client key for node n1 cannot be read"):
        await connect(dataclasses.replace(root_target, client_key="garbage"))


def test_target_repr_hides_client_key(root_target: SshTarget) -> None:
    assert "PRIVATE" not in repr(root_target)
