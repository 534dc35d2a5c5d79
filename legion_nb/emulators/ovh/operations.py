"""The newer, asynchronous instance creation: ``POST .../region/{region}/instance`` -> an operation.

OVHcloud's regional create answers with an *operation* (``instance#create``) instead of the instance,
and the client polls ``GET .../operation/{operationId}`` until its status is ``completed`` (or
``in-error``); ``resourceId`` then names the instance. The body differs from the classic create:
``flavor: {id}``, ``bootFrom: {imageId}``, ``sshKey: {name}`` (or ``sshKeyCreate: {name, publicKey}``),
``network: {public: true}``, ``billingPeriod: hourly|monthly``, ``userData``.

The emulator derives an operation's status from its instance on every read (``created`` until the
first read after launch, ``in-progress`` while it builds, ``completed`` once it was ACTIVE), so there
is no second clock to keep in sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from legion_nb.emulators.httpkit import isoformat as iso
from legion_nb.emulators.ovh.compute import Compute, Instance, read_json, required_str
from legion_nb.emulators.ovh.errors import OvhFault, json_response

__all__ = ["Operation", "Operations"]


@dataclass
class Operation:
    id: str
    region: str
    instance: Instance
    created: datetime
    started: datetime | None = field(default=None)

    def to_json(self, now: datetime) -> dict[str, Any]:
        done = self.instance.ready_at
        failed = self.instance.status == "ERROR"
        if self.started is None:
            self.started = now
            status = "created"
        elif done is not None:
            status = "completed"
        else:
            status = "in-error" if failed else "in-progress"
        return {
            "id": self.id,
            "action": "instance#create",
            "status": status,
            "progress": 100 if status == "completed" else 0,
            "regions": [self.region],
            "createdAt": iso(self.created),
            "startedAt": iso(self.started),
            "completedAt": iso(done) if status == "completed" and done else None,
            "resourceId": self.instance.id if status == "completed" else None,
            "subOperations": None,
        }


class Operations:
    """Regional creates and the operations that report on them."""

    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self.operations: dict[str, Operation] = {}

    def routes(self, prefix: str) -> list[web.RouteDef]:
        base = f"{prefix}/cloud/project/{{serviceName}}"
        return [
            web.post(f"{base}/region/{{regionName}}/instance", self.create),
            web.get(f"{base}/operation", self.list_operations),
            web.get(f"{base}/operation/{{operationId}}", self.get_operation),
        ]

    async def create(self, request: web.Request) -> web.Response:
        self.compute.check_project(request)
        region = request.match_info["regionName"]
        body = await read_json(request)
        flavor = body.get("flavor")
        boot = body.get("bootFrom")
        if not isinstance(flavor, dict) or not isinstance(boot, dict):
            raise OvhFault(400, "Client::BadRequest", "Missing parameter(s): flavor, bootFrom")
        period = body.get("billingPeriod", "hourly")
        if period not in ("hourly", "monthly"):
            raise OvhFault(
                400, "Client::BadRequest", "Invalid parameter: billingPeriod must be hourly or monthly"
            )
        instance = self.compute.launch(
            name=required_str(body, "name"),
            region=region,
            flavor_id=required_str(flavor, "id"),
            image_id=required_str(boot, "imageId"),
            ssh_key_id=self._ssh_key_id(body, region),
            user_data=body.get("userData"),
            monthly=period == "monthly",
        )
        now = self.compute.world.now()
        operation = Operation(self.compute.new_uuid(), region, instance, now)
        self.operations[operation.id] = operation
        return json_response(operation.to_json(now))

    def _ssh_key_id(self, body: dict[str, Any], region: str) -> str | None:
        reference = body.get("sshKey")
        new_key = body.get("sshKeyCreate")
        if isinstance(new_key, dict):
            key = self.compute.add_ssh_key(
                required_str(new_key, "name"), required_str(new_key, "publicKey"), region
            )
            return key.id
        if isinstance(reference, dict):
            name = required_str(reference, "name")
            found = next((k for k in self.compute.ssh_keys.values() if k.name == name), None)
            if found is None:
                raise OvhFault(400, "Client::BadRequest", f"SSH key {name} does not exist")
            return found.id
        return None

    async def list_operations(self, request: web.Request) -> web.Response:
        self.compute.check_project(request)
        now = self.compute.world.now()
        return json_response([op.to_json(now) for op in self.operations.values()])

    async def get_operation(self, request: web.Request) -> web.Response:
        self.compute.check_project(request)
        operation_id = request.match_info["operationId"]
        operation = self.operations.get(operation_id)
        if operation is None:
            raise OvhFault(404, "Client::NotFound", f"Operation {operation_id} does not exist")
        return json_response(operation.to_json(self.compute.world.now()))
