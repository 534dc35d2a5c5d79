"""Public Cloud compute: instances, SSH keys and the catalog reads, under ``/cloud/project/{serviceName}``.

What the emulator reproduces because adapters depend on it:

* Instance names are **not** unique (OVHcloud allows any number of instances with one name); ids are
  UUIDs chosen by the provider. An adapter that retries a create blindly makes a second instance.
* A new instance is ``BUILD`` with no address; it turns ``ACTIVE`` after ``Timing.boot_seconds`` and
  only then lists its public IPv4 (from the world's loopback pool). Actions pass through the real
  transient statuses (``REBOOT``/``HARD_REBOOT``, ``REBUILD``, ``DELETING``) for
  ``Timing.action_seconds``.
* Flavor and image ids belong to one region; mixing regions is a 400, as at OVHcloud.
* Lists of instances, flavors, images and SSH keys return full objects; only ``/region`` returns names.

Every instance ever created stays in :attr:`Compute.ledger` with its creation and deletion times:
that is what the billing emulator charges for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from legion_nb.emulators.history import PastServer, past_servers
from legion_nb.emulators.httpkit import isoformat as iso
from legion_nb.emulators.ovh.catalog import FLAVORS, REGIONS, Catalog, flavor_id
from legion_nb.emulators.ovh.errors import OvhFault, json_response
from legion_nb.emulators.world import SandboxWorld

__all__ = ["Compute", "Instance", "SshKey", "read_json", "required_str"]

_ACTION_STATUSES = {"soft": "REBOOT", "hard": "HARD_REBOOT"}


@dataclass
class SshKey:
    id: str
    name: str
    public_key: str
    fingerprint: str
    regions: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "publicKey": self.public_key,
            "fingerprint": self.fingerprint,
            "regions": list(self.regions),
        }


@dataclass
class Instance:
    id: str
    name: str
    region: str
    flavor_id: str
    image_id: str
    ssh_key_id: str | None
    monthly: bool
    created: datetime
    ip: str
    user_data: str | None = field(default=None, repr=False)
    status: str = "BUILD"
    deleted: datetime | None = None
    ready_at: datetime | None = None
    """When the instance first became ACTIVE (the end of its creation)."""
    generation: int = 0
    """Bumped by every status change; a pending settle applies only if nothing changed since."""


def _fingerprint(public_key: str) -> str:
    parts = public_key.split()
    if len(parts) < 2 or not (parts[0].startswith("ssh-") or parts[0].startswith("ecdsa-")):
        raise OvhFault(
            400, "Client::BadRequest", "Invalid public key: expected 'ssh-<type> <base64> [comment]'"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise OvhFault(400, "Client::BadRequest", "Invalid public key: the key body is not base64") from exc
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - OVHcloud shows MD5 fingerprints
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or OVHcloud's 400 for anything else."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise OvhFault(400, "Client::BadRequest", "Invalid JSON received") from exc
    if not isinstance(body, dict):
        raise OvhFault(400, "Client::BadRequest", "Invalid JSON received: expected an object")
    return body


def required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise OvhFault(400, "Client::BadRequest", f"Missing parameter(s): {name}")
    return value


class Compute:
    """The instance, SSH key and catalog half of one Public Cloud project."""

    def __init__(self, world: SandboxWorld, catalog: Catalog, service_name: str) -> None:
        self.world = world
        self.catalog = catalog
        self.service_name = service_name
        self.instances: dict[str, Instance] = {}
        self.ledger: list[Instance] = [
            self._past(past)
            for past in past_servers(
                world.seed, "ovh", world.history_days, world.now(), [f.name for f in FLAVORS[:3]]
            )
        ]
        """Every instance ever created (deleted ones and back-dated history included), for billing."""
        self.ssh_keys: dict[str, SshKey] = {}

    def _past(self, past: PastServer) -> Instance:
        region = REGIONS[0].name
        return Instance(
            id=str(uuid.uuid5(uuid.UUID(int=0), f"{self.service_name}/{past.name}")),
            name=past.name,
            region=region,
            flavor_id=flavor_id(region, past.server_type),
            image_id="",
            ssh_key_id=None,
            monthly=False,
            created=past.created,
            ip="",
            status="DELETED",
            deleted=past.deleted,
        )

    # -- wiring ---------------------------------------------------------------------------------

    def routes(self, prefix: str) -> list[web.RouteDef]:
        base = f"{prefix}/cloud/project/{{serviceName}}"
        inst = f"{base}/instance/{{instanceId}}"
        return [
            web.get(f"{prefix}/cloud/project", self.list_projects),
            web.get(base, self.get_project),
            web.get(f"{base}/region", self.list_regions),
            web.get(f"{base}/region/{{regionName}}", self.get_region),
            web.get(f"{base}/flavor", self.list_flavors),
            web.get(f"{base}/flavor/{{flavorId}}", self.get_flavor),
            web.get(f"{base}/image", self.list_images),
            web.get(f"{base}/image/{{imageId}}", self.get_image),
            web.get(f"{base}/sshkey", self.list_ssh_keys),
            web.post(f"{base}/sshkey", self.create_ssh_key),
            web.get(f"{base}/sshkey/{{keyId}}", self.get_ssh_key),
            web.delete(f"{base}/sshkey/{{keyId}}", self.delete_ssh_key),
            web.get(f"{base}/instance", self.list_instances),
            web.post(f"{base}/instance", self.create_instance),
            web.get(inst, self.get_instance),
            web.delete(inst, self.delete_instance),
            web.post(f"{inst}/reboot", self.reboot),
            web.post(f"{inst}/reinstall", self.reinstall),
            web.post(f"{inst}/start", self.start),
            web.post(f"{inst}/stop", self.stop),
            web.post(f"{inst}/rescueMode", self.rescue_mode),
        ]

    def check_project(self, request: web.Request) -> None:
        if request.match_info["serviceName"] != self.service_name:
            raise OvhFault(
                404, "Client::NotFound", f"This service does not exist: {request.match_info['serviceName']}"
            )

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.world.rng.getrandbits(128), version=4))

    # -- project, regions, catalog -----------------------------------------------------------

    async def list_projects(self, request: web.Request) -> web.Response:
        return json_response([self.service_name])

    async def get_project(self, request: web.Request) -> web.Response:
        self.check_project(request)
        return json_response(
            {
                "project_id": self.service_name,
                "projectName": "Legion sandbox",
                "description": "Legion sandbox",
                "status": "ok",
                "planCode": "project.2018",
                "access": "full",
                "creationDate": "2026-01-01T00:00:00+00:00",
            }
        )

    async def list_regions(self, request: web.Request) -> web.Response:
        self.check_project(request)
        return json_response(list(self.catalog.regions))

    async def get_region(self, request: web.Request) -> web.Response:
        self.check_project(request)
        name = request.match_info["regionName"]
        if name not in self.catalog.regions:
            raise OvhFault(404, "Client::NotFound", f"Region {name} does not exist")
        return json_response(self.catalog.region_json(name))

    async def list_flavors(self, request: web.Request) -> web.Response:
        self.check_project(request)
        region = request.query.get("region")
        return json_response([self.catalog.flavor_json(f) for f in self.catalog.flavor_ids(region)])

    async def get_flavor(self, request: web.Request) -> web.Response:
        self.check_project(request)
        flavor_id = request.match_info["flavorId"]
        if self.catalog.flavor(flavor_id) is None:
            raise OvhFault(404, "Client::NotFound", f"Flavor {flavor_id} does not exist")
        return json_response(self.catalog.flavor_json(flavor_id))

    async def list_images(self, request: web.Request) -> web.Response:
        self.check_project(request)
        region = request.query.get("region")
        os_type = request.query.get("osType")
        ids = self.catalog.image_ids(region) if os_type in (None, "linux") else []
        return json_response([self.catalog.image_json(i) for i in ids])

    async def get_image(self, request: web.Request) -> web.Response:
        self.check_project(request)
        image_id = request.match_info["imageId"]
        if self.catalog.image(image_id) is None:
            raise OvhFault(404, "Client::NotFound", f"Image {image_id} does not exist")
        return json_response(self.catalog.image_json(image_id))

    # -- SSH keys -----------------------------------------------------------------------------

    async def list_ssh_keys(self, request: web.Request) -> web.Response:
        self.check_project(request)
        region = request.query.get("region")
        keys = [k for k in self.ssh_keys.values() if region is None or region in k.regions]
        return json_response([k.to_json() for k in keys])

    async def create_ssh_key(self, request: web.Request) -> web.Response:
        self.check_project(request)
        body = await read_json(request)
        key = self.add_ssh_key(
            required_str(body, "name"), required_str(body, "publicKey"), body.get("region")
        )
        return json_response(key.to_json())

    def _ssh_key(self, request: web.Request) -> SshKey:
        self.check_project(request)
        key = self.ssh_keys.get(request.match_info["keyId"])
        if key is None:
            raise OvhFault(404, "Client::NotFound", f"SSH key {request.match_info['keyId']} does not exist")
        return key

    async def get_ssh_key(self, request: web.Request) -> web.Response:
        return json_response(self._ssh_key(request).to_json())

    async def delete_ssh_key(self, request: web.Request) -> web.Response:
        key = self._ssh_key(request)
        del self.ssh_keys[key.id]
        return json_response(None)

    # -- instances ----------------------------------------------------------------------------

    def instance_json(self, instance: Instance) -> dict[str, Any]:
        flavor = self.catalog.flavor(instance.flavor_id)
        flavor_name = flavor[1].name if flavor else "unknown"
        addresses = (
            [{"ip": instance.ip, "type": "public", "version": 4, "networkId": "", "gatewayIp": None}]
            if instance.status not in ("BUILD", "DELETING")
            else []
        )
        plan = f"{flavor_name}.monthly.postpaid" if instance.monthly else f"{flavor_name}.consumption"
        return {
            "id": instance.id,
            "name": instance.name,
            "status": instance.status,
            "region": instance.region,
            "flavorId": instance.flavor_id,
            "imageId": instance.image_id,
            "sshKeyId": instance.ssh_key_id,
            "created": iso(instance.created),
            "ipAddresses": addresses,
            "monthlyBilling": (
                {"since": iso(instance.created), "status": "ok"} if instance.monthly else None
            ),
            "planCode": plan,
            "operationIds": [],
            "currentMonthOutstandingAmount": None,
        }

    def instance_detail_json(self, instance: Instance) -> dict[str, Any]:
        body = self.instance_json(instance)
        for name in ("flavorId", "imageId", "sshKeyId"):
            body.pop(name)
        key = self.ssh_keys.get(instance.ssh_key_id or "")
        body["flavor"] = self.catalog.flavor_json(instance.flavor_id)
        body["image"] = self.catalog.image_json(instance.image_id)
        body["sshKey"] = key.to_json() if key else None
        body["rescuePassword"] = None
        return body

    def _instance(self, request: web.Request) -> Instance:
        self.check_project(request)
        instance_id = request.match_info["instanceId"]
        instance = self.instances.get(instance_id)
        if instance is None:
            raise OvhFault(
                404, "Client::NotFound", f"The requested object (instanceId = {instance_id}) does not exist"
            )
        return instance

    def _transition(
        self,
        instance: Instance,
        status: str,
        then: str | None,
        seconds: float,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Set ``status`` now and, unless something else happens first, ``then`` after ``seconds``."""
        instance.status = status
        instance.generation += 1
        if then is None and after is None:
            return
        generation = instance.generation

        async def settle() -> None:
            await self.world.sleep(seconds)
            if instance.generation != generation:
                return
            if then is not None:
                instance.status = then
                instance.generation += 1
            if after is not None:
                after()

        self.world.spawn(settle())

    def _require_status(self, instance: Instance, allowed: tuple[str, ...], action: str) -> None:
        if instance.status not in allowed:
            raise OvhFault(
                409,
                "Client::Conflict",
                f"Cannot {action} instance {instance.id} while it is {instance.status}",
            )

    async def list_instances(self, request: web.Request) -> web.Response:
        self.check_project(request)
        region = request.query.get("region")
        items = [i for i in self.instances.values() if region is None or i.region == region]
        return json_response([self.instance_json(i) for i in items])

    async def create_instance(self, request: web.Request) -> web.Response:
        self.check_project(request)
        body = await read_json(request)
        monthly = body.get("monthlyBilling", False)
        if not isinstance(monthly, bool):
            raise OvhFault(400, "Client::BadRequest", "Invalid parameter: monthlyBilling must be a boolean")
        instance = self.launch(
            name=required_str(body, "name"),
            region=required_str(body, "region"),
            flavor_id=required_str(body, "flavorId"),
            image_id=required_str(body, "imageId"),
            ssh_key_id=body.get("sshKeyId"),
            user_data=body.get("userData"),
            monthly=monthly,
        )
        return json_response(self.instance_json(instance))

    def launch(
        self,
        *,
        name: str,
        region: str,
        flavor_id: str,
        image_id: str,
        ssh_key_id: Any,
        user_data: Any,
        monthly: bool,
    ) -> Instance:
        """Validate and start one instance (``BUILD``, then ``ACTIVE`` after the boot time)."""
        if region not in self.catalog.regions:
            raise OvhFault(400, "Client::BadRequest", f"Invalid region: {region}")
        flavor = self.catalog.flavor(flavor_id)
        if flavor is None or flavor[0].name != region:
            raise OvhFault(400, "Client::BadRequest", f"Flavor {flavor_id} does not exist in region {region}")
        image = self.catalog.image(image_id)
        if image is None or image[0].name != region:
            raise OvhFault(400, "Client::BadRequest", f"Image {image_id} does not exist in region {region}")
        if ssh_key_id is not None and ssh_key_id not in self.ssh_keys:
            raise OvhFault(400, "Client::BadRequest", f"SSH key {ssh_key_id} does not exist")
        if user_data is not None and not isinstance(user_data, str):
            raise OvhFault(400, "Client::BadRequest", "Invalid parameter: userData must be a string")
        instance = Instance(
            id=self.new_uuid(),
            name=name,
            region=region,
            flavor_id=flavor_id,
            image_id=image_id,
            ssh_key_id=ssh_key_id,
            monthly=monthly,
            created=self.world.now(),
            ip=self.world.addresses.allocate(),
            user_data=user_data,
        )
        self.instances[instance.id] = instance
        self.ledger.append(instance)

        def ready() -> None:
            instance.ready_at = self.world.now()
            self.world.machine_running(instance.ip, instance.name, self._root_keys(instance))

        self._transition(instance, "BUILD", "ACTIVE", self.world.timing.boot_seconds, after=ready)
        return instance

    def add_ssh_key(self, name: str, public_key: str, region: Any) -> SshKey:
        """Register a key (names are unique per project)."""
        fingerprint = _fingerprint(public_key.strip())
        if any(k.name == name for k in self.ssh_keys.values()):
            raise OvhFault(409, "Client::Conflict::SshKeyAlreadyExists", f"SSH key {name} already exists")
        regions = [region] if isinstance(region, str) and region else sorted(self.catalog.regions)
        key_id = "".join(f"{b:02x}" for b in self.world.rng.randbytes(12))
        key = SshKey(key_id, name, public_key.strip(), fingerprint, regions)
        self.ssh_keys[key_id] = key
        return key

    def _root_keys(self, instance: Instance) -> tuple[str, ...]:
        """The public keys the image installs for root: the instance's SSH key, if it still exists."""
        key = self.ssh_keys.get(instance.ssh_key_id or "")
        return (key.public_key,) if key else ()

    async def get_instance(self, request: web.Request) -> web.Response:
        return json_response(self.instance_detail_json(self._instance(request)))

    async def delete_instance(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        if instance.status == "DELETING":
            return json_response(None)

        def gone() -> None:
            instance.deleted = self.world.now()
            self.instances.pop(instance.id, None)
            self.world.machine_gone(instance.ip)
            self.world.addresses.release(instance.ip)

        self._transition(instance, "DELETING", None, self.world.timing.action_seconds, after=gone)
        return json_response(None)

    async def reboot(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        body = await read_json(request)
        kind = body.get("type")
        if kind not in _ACTION_STATUSES:
            raise OvhFault(400, "Client::BadRequest", "Invalid parameter: type must be soft or hard")
        self._require_status(instance, ("ACTIVE", "SHUTOFF", "RESCUE"), "reboot")
        self._transition(
            instance,
            _ACTION_STATUSES[kind],
            "ACTIVE",
            self.world.timing.action_seconds,
            after=lambda: self.world.machine_rebooted(instance.ip),
        )
        return json_response(None)

    async def reinstall(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        body = await read_json(request)
        image_id = required_str(body, "imageId")
        image = self.catalog.image(image_id)
        if image is None or image[0].name != instance.region:
            raise OvhFault(
                400, "Client::BadRequest", f"Image {image_id} does not exist in region {instance.region}"
            )
        self._require_status(instance, ("ACTIVE", "SHUTOFF", "RESCUE", "ERROR"), "reinstall")
        instance.image_id = image_id

        def rebuilt() -> None:
            self.world.machine_rebuilt(instance.ip, instance.name, self._root_keys(instance))

        self._transition(instance, "REBUILD", "ACTIVE", self.world.timing.boot_seconds, after=rebuilt)
        return json_response(self.instance_detail_json(instance))

    async def start(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        self._require_status(instance, ("SHUTOFF",), "start")

        def started() -> None:
            self.world.machine_running(instance.ip, instance.name, self._root_keys(instance))

        self._transition(instance, "SHUTOFF", "ACTIVE", self.world.timing.action_seconds, after=started)
        return json_response(None)

    async def stop(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        self._require_status(instance, ("ACTIVE",), "stop")
        self._transition(
            instance,
            "ACTIVE",
            "SHUTOFF",
            self.world.timing.action_seconds,
            after=lambda: self.world.machine_stopped(instance.ip),
        )
        return json_response(None)

    async def rescue_mode(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        body = await read_json(request)
        rescue = body.get("rescue")
        if not isinstance(rescue, bool):
            raise OvhFault(400, "Client::BadRequest", "Missing parameter(s): rescue")
        if rescue:
            self._require_status(instance, ("ACTIVE", "SHUTOFF"), "enter rescue mode on")
            self._transition(instance, instance.status, "RESCUE", self.world.timing.action_seconds)
        else:
            self._require_status(instance, ("RESCUE",), "leave rescue mode on")
            self._transition(instance, "RESCUE", "ACTIVE", self.world.timing.action_seconds)
        return json_response({"adminPassword": None})
