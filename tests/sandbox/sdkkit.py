"""The providers' own SDK clients pointed at a sandbox emulator, built one way for every test."""

from __future__ import annotations

from collections.abc import Mapping

import scaleway  # type: ignore[import-untyped]


def scaleway_client(
    credentials: Mapping[str, str], url: str, *, secret_key: str | None = None
) -> scaleway.Client:
    """A ``scaleway.Client`` with the emulator's credentials (GUIDE §3), unchanged but for ``api_url``."""
    return scaleway.Client(
        access_key=credentials["access_key"],
        secret_key=secret_key or credentials["secret_key"],
        default_project_id=credentials["project_id"],
        default_organization_id=credentials["organization_id"],
        default_zone=credentials["zone"],
        api_url=url,
    )
