"""A simulated node follows its server's power at the provider, as a real machine would.

Driven through the providers' own SDKs (hcloud, python-ovh, scaleway; all blocking, so they run in a thread
while the sandbox serves on this loop). A powered-off server's node refuses every connection - SSH,
the admin API (mTLS HTTPS) and a satellite's Sender API - and the clients read that as
"unreachable", not as a refused certificate; power-on or a reboot brings it back with its disk and
its stream sessions intact; a rebuild or reinstall brings back a fresh machine; a delete leaves
nothing listening.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncssh
import ovh  # type: ignore[import-untyped]
import ovh.client  # type: ignore[import-untyped]
import pytest
from hcloud import Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from scaleway.iam.v1alpha1 import IamV1Alpha1API  # type: ignore[import-untyped]
from scaleway.instance.v1 import ServerAction  # type: ignore[import-untyped]
from scaleway.instance.v1.custom_api import InstanceUtilsV1API  # type: ignore[import-untyped]
from sdkkit import scaleway_client

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.nodes.fleet import NodeFleet
from legion_nb.emulators.nodes.node import SimulatedNode
from legion_nb.emulators.nodes.system import TLS_CA_PATH, TLS_CERT_PATH, TLS_KEY_PATH, NodeTiming
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.engine.deployment.security import ClusterSecurity
from legion_nb.providers.node_admin import NodeAdminClient, NodeAdminUnreachableError, admin_url
from legion_nb.providers.satellite import SatelliteClient, SatelliteError, SatelliteTrustError, satellite_url

MARK = "/srv/mark"


@pytest.fixture(scope="module")
def cluster() -> ClusterSecurity:
    return ClusterSecurity.create("default")


@pytest.fixture(scope="module")
def root_key() -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return str(key.export_public_key("openssh").decode("ascii").strip())


@pytest.fixture
async def cloud() -> AsyncIterator[SandboxCloud]:
    world = SandboxWorld(seed=9, timing=Timing(action_seconds=0.02, boot_seconds=0.02))
    fleet = NodeFleet(timing=NodeTiming(reboot=0.01), sender_port=0)
    async with SandboxCloud(world, nodes=fleet) as running:
        yield running


def fleet_of(cloud: SandboxCloud) -> NodeFleet:
    assert cloud.nodes is not None
    return cloud.nodes


async def eventually(predicate: Callable[[], bool]) -> None:
    """Until a world task took effect (the node follows the provider's action a moment later)."""
    while not predicate():
        await asyncio.sleep(0.01)


async def serving(node: SimulatedNode, cluster: ClusterSecurity, receiver: str) -> None:
    """What an install and a satellite setup leave on the node: an admin API, a Sender API and a
    stream session sending to the sandbox's receiver, and a file on its disk."""
    issued = cluster.provision_node(node.hostname, ip_addresses=[node.address]).certificate
    node.system.files[TLS_CA_PATH] = cluster.authority.certificate_pem
    node.system.files[TLS_CERT_PATH] = issued.certificate_pem
    node.system.files[TLS_KEY_PATH] = issued.private_key_pem
    node.system.files[MARK] = "kept on disk"
    await node.start_admin_api()
    node.system.sender_config = {
        "ca_certificate": cluster.authority.certificate_pem,
        "certificate": issued.certificate_pem,
        "private_key": issued.private_key_pem,
        "clients": [cluster.operator.common_name],
    }
    await node.start_sender()
    await node.senders.start("feed", receiver)
    await sent_more(node)


async def sent_more(node: SimulatedNode) -> None:
    """Until the node's stream session pushed another chunk."""
    session = node.senders.session("feed")
    before = session.bytes
    await eventually(lambda: session.bytes > before)


async def listening(node: SimulatedNode) -> dict[str, bool]:
    """Whether each of the node's ports accepts a TCP connection now."""
    assert node.sender_port is not None
    ports = {"ssh": node.ssh_port, "admin": node.admin_port, "sender": node.sender_port}
    found: dict[str, bool] = {}
    for name, port in ports.items():
        try:
            _reader, writer = await asyncio.open_connection(node.address, port)
        except ConnectionRefusedError:
            found[name] = False
        else:
            writer.close()
            await writer.wait_closed()
            found[name] = True
    return found


def admin_of(node: SimulatedNode, cluster: ClusterSecurity) -> NodeAdminClient:
    url = admin_url(node.address, node.admin_port)
    return NodeAdminClient(node.hostname, url, cluster.operator_ssl_context())


def sender_of(node: SimulatedNode, cluster: ClusterSecurity) -> SatelliteClient:
    assert node.sender_port is not None
    url = satellite_url(node.address, node.sender_port)
    return SatelliteClient(node.hostname, url, cluster.operator_ssl_context())


async def is_down_to_every_client(node: SimulatedNode, cluster: ClusterSecurity) -> None:
    """Every port refuses, and Legion's clients call it unreachable, not a refused certificate."""
    assert await listening(node) == {"ssh": False, "admin": False, "sender": False}
    async with admin_of(node, cluster) as admin:
        with pytest.raises(NodeAdminUnreachableError, match="does not answer"):
            await admin.health()
    sender = sender_of(node, cluster)
    try:
        with pytest.raises(SatelliteError, match="does not answer") as caught:
            await sender.health()
        assert not isinstance(caught.value, SatelliteTrustError)
    finally:
        await sender.aclose()


async def is_back_as_it_was(node: SimulatedNode, cluster: ClusterSecurity, host_key: str) -> None:
    """Every port answers again; the disk, the host key and the stream session are the same."""
    assert await listening(node) == {"ssh": True, "admin": True, "sender": True}
    async with admin_of(node, cluster) as admin:
        assert (await admin.health())["node"] == node.hostname
    sender = sender_of(node, cluster)
    try:
        assert (await sender.session("feed") or {}).get("state") == "running"
    finally:
        await sender.aclose()
    assert node.system.files[MARK] == "kept on disk" and node.host_public_key == host_key
    await sent_more(node)  # the Sender service restarted the session at boot


async def test_a_hetzner_server_powered_off_refuses_everything_and_returns_intact(
    cloud: SandboxCloud, cluster: ClusterSecurity, root_key: str
) -> None:
    fleet = fleet_of(cloud)
    receiver = await fleet.start_receiver()
    hz = cloud.endpoints()["hetzner"]
    client = Client(token=hz["token"], api_endpoint=hz["url"], poll_interval=0.02)

    def create() -> int:
        key = client.ssh_keys.create(name="legion", public_key=root_key)
        made = client.servers.create(
            name="sat1",
            server_type=ServerType(name="cx22"),
            image=Image(name="debian-12"),
            location=Location(name="fsn1"),
            ssh_keys=[key],
        )
        made.action.wait_until_finished()
        for action in made.next_actions:
            action.wait_until_finished()
        return int(made.server.id)

    server_id = await asyncio.to_thread(create)
    server = await asyncio.to_thread(client.servers.get_by_id, server_id)
    node = await fleet.wait_node(server.public_net.ipv4.ip)
    await serving(node, cluster, receiver.url())
    host_key = node.host_public_key

    await asyncio.to_thread(lambda: server.power_off().wait_until_finished())
    await eventually(lambda: not node.is_up)
    await is_down_to_every_client(node, cluster)
    delivered = receiver.received["feed"]

    await asyncio.to_thread(lambda: server.power_on().wait_until_finished())
    await eventually(lambda: node.is_up)
    await is_back_as_it_was(node, cluster, host_key)
    await eventually(lambda: receiver.received["feed"] > delivered)  # real bytes arrive again

    boots = node.boots
    await asyncio.to_thread(lambda: server.reboot().wait_until_finished())
    await eventually(lambda: node.boots > boots and node.is_up)
    await is_back_as_it_was(node, cluster, host_key)

    await asyncio.to_thread(lambda: server.delete().wait_until_finished())
    await eventually(lambda: node.address not in fleet and not node.is_up)  # every port closed
    await is_down_to_every_client(node, cluster)


async def test_an_ovh_instance_stopped_refuses_everything_and_a_reinstall_is_a_fresh_machine(
    cloud: SandboxCloud, cluster: ClusterSecurity, root_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = fleet_of(cloud)
    receiver = await fleet.start_receiver()
    block = cloud.endpoints()["ovh"]
    monkeypatch.setitem(ovh.client.ENDPOINTS, "legion-sandbox", block["url"])
    client = ovh.Client(
        endpoint="legion-sandbox",
        application_key=block["application_key"],
        application_secret=block["application_secret"],
        consumer_key=block["consumer_key"],
    )
    base = f"/cloud/project/{block['service_name']}"

    def create() -> str:
        flavor = next(f for f in client.get(f"{base}/flavor", region="GRA11") if f["name"] == "d2-2")
        image = next(i for i in client.get(f"{base}/image", region="GRA11") if i["name"] == "Debian 12")
        key = client.post(f"{base}/sshkey", name="op", publicKey=root_key, region="GRA11")
        made = client.post(
            f"{base}/instance",
            name="sat2",
            flavorId=flavor["id"],
            imageId=image["id"],
            region="GRA11",
            sshKeyId=key["id"],
            monthlyBilling=False,
        )
        return str(made["id"])

    path = f"{base}/instance/{await asyncio.to_thread(create)}"

    async def until(status: str) -> str:
        while (instance := await asyncio.to_thread(client.get, path))["status"] != status:
            await asyncio.sleep(0.01)
        return str(instance["ipAddresses"][0]["ip"])

    node = await fleet.wait_node(await until("ACTIVE"))
    await serving(node, cluster, receiver.url())
    host_key = node.host_public_key

    await asyncio.to_thread(client.post, f"{path}/stop")
    await until("SHUTOFF")
    await eventually(lambda: not node.is_up)
    await is_down_to_every_client(node, cluster)

    await asyncio.to_thread(client.post, f"{path}/start")
    await until("ACTIVE")
    await eventually(lambda: node.is_up)
    await is_back_as_it_was(node, cluster, host_key)

    boots = node.boots
    await asyncio.to_thread(lambda: client.post(f"{path}/reboot", type="soft"))
    await eventually(lambda: node.boots > boots and node.is_up)
    await is_back_as_it_was(node, cluster, host_key)

    image_id = (await asyncio.to_thread(client.get, path))["image"]["id"]
    await asyncio.to_thread(lambda: client.post(f"{path}/reinstall", imageId=image_id))
    await eventually(lambda: fleet.node(node.address) is not node if node.address in fleet else False)
    fresh = fleet.node(node.address)
    await fresh.wait_up()
    assert MARK not in fresh.system.files and fresh.host_public_key != host_key
    assert fresh.system.sender_config is None and not fresh.system.certs_activated

    await asyncio.to_thread(client.delete, path)
    await eventually(lambda: node.address not in fleet and not node.is_up)  # every port closed
    assert not fresh.is_up


async def test_a_scaleway_server_gets_a_node_that_follows_its_power(
    cloud: SandboxCloud, cluster: ClusterSecurity, root_key: str
) -> None:
    fleet = fleet_of(cloud)
    receiver = await fleet.start_receiver()
    creds = cloud.endpoints()["scaleway"]
    client = scaleway_client(creds, creds["url"])
    api = InstanceUtilsV1API(client)

    def create() -> str:
        IamV1Alpha1API(client).create_ssh_key(name="legion", public_key=root_key)
        made = api.create_server(commercial_type="DEV1-S", name="sat3", image="debian_bookworm").server
        api.server_action(server_id=made.id, action=ServerAction.POWERON)
        return str(made.id)

    server_id = await asyncio.to_thread(create)

    async def state() -> str:
        return str((await asyncio.to_thread(api.get_server, server_id=server_id)).server.state)

    async def act(action: object, settled: str | None) -> None:
        await asyncio.to_thread(lambda: api.server_action(server_id=server_id, action=action))
        while settled is not None and await state() != settled:
            await asyncio.sleep(0.01)

    found = await asyncio.to_thread(api.get_server, server_id=server_id)
    node = await fleet.wait_node(found.server.public_ip.address)
    await serving(node, cluster, receiver.url())
    host_key = node.host_public_key

    await act(ServerAction.POWEROFF, "stopped")
    await eventually(lambda: not node.is_up)
    await is_down_to_every_client(node, cluster)

    await act(ServerAction.POWERON, "running")
    await eventually(lambda: node.is_up)
    await is_back_as_it_was(node, cluster, host_key)

    boots = node.boots
    await act(ServerAction.REBOOT, None)
    await eventually(lambda: node.boots > boots and node.is_up)
    await is_back_as_it_was(node, cluster, host_key)

    await act(ServerAction.TERMINATE, None)
    await eventually(lambda: node.address not in fleet and not node.is_up)  # every port closed
    await is_down_to_every_client(node, cluster)
