"""Running (or, with --dry-run, only announcing) AWS calls, and recording what happened.

Reads (describe/get/list/head) always run, so a dry run can tell what exists; every call that
would change something goes through ``change()``, which a dry run prints instead of making.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from clickstream.errors import DeployError

__all__ = ["DeployError", "Executor", "Outcome"]


@dataclass
class Outcome:
    resource: str
    status: str
    """created | exists | updated | deleted | absent | would create | would delete | ..."""
    detail: str = ""


@dataclass
class Executor:
    session: Any
    dry_run: bool = False
    region: str = ""
    """Resolved once (``config.resolve_region``) and given to every client."""
    outcomes: list[Outcome] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    """Changing calls, as made (or as a dry run would make them)."""
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from clickstream.awsclient import client_config

            self._clients[service] = self.session.client(
                service, region_name=self.region or None, config=client_config()
            )
        return self._clients[service]

    def read(self, service: str, operation: str, **params: Any) -> Any:
        return self._invoke(service, operation, params)

    def change(
        self, service: str, operation: str, gone: tuple[str, ...] = (), **params: Any
    ) -> Any:
        """Make (or, in a dry run, announce) a changing call. Error codes in ``gone`` mean the
        target is already absent (a teardown after a partial deploy): the call returns None."""
        rendered = json.dumps(params, default=str, sort_keys=True)
        self.calls.append(f"{service}.{operation}({rendered})")
        if self.dry_run:
            return None
        return self._invoke(service, operation, params, gone)

    def _invoke(
        self, service: str, operation: str, params: dict[str, Any], gone: tuple[str, ...] = ()
    ) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        from clickstream.awsclient import describe

        try:
            return getattr(self.client(service), operation)(**params)
        except ClientError as err:
            if gone and err.response.get("Error", {}).get("Code") in gone:
                return None
            raise DeployError(f"{service}.{operation} failed: {describe(err)}") from err
        except BotoCoreError as err:
            raise DeployError(f"{service}.{operation} failed: {describe(err)}") from err

    def pages(
        self, service: str, operation: str, key: str, gone: tuple[str, ...] = (), **params: Any
    ) -> list[Any]:
        """Every item under ``key`` across all pages of a list call (never just the first);
        nothing when AWS answers with one of the ``gone`` codes."""
        from botocore.exceptions import BotoCoreError, ClientError

        from clickstream.awsclient import describe

        items: list[Any] = []
        try:
            for page in self.client(service).get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
        except ClientError as err:
            if gone and err.response.get("Error", {}).get("Code") in gone:
                return []
            raise DeployError(f"{service}.{operation} failed: {describe(err)}") from err
        except BotoCoreError as err:
            raise DeployError(f"{service}.{operation} failed: {describe(err)}") from err
        return items

    def exists(self, service: str, operation: str, missing: tuple[str, ...], **params: Any) -> Any:
        """The read's response, or None when AWS answers with one of the ``missing`` codes."""
        from botocore.exceptions import BotoCoreError, ClientError

        from clickstream.awsclient import describe

        try:
            return getattr(self.client(service), operation)(**params)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in missing:
                return None
            raise DeployError(f"{service}.{operation} failed: {describe(err)}") from err
        except BotoCoreError as err:
            raise DeployError(f"{service}.{operation} failed: {describe(err)}") from err

    def record(self, resource: str, created: bool, detail: str = "", changed: str = "") -> None:
        """``changed``: what happens to an existing resource ("replace" a view, "update" a
        table); by default it is only found ("exists")."""
        if created:
            status = "would create" if self.dry_run else "created"
        elif changed:
            status = f"would {changed}" if self.dry_run else f"{changed.rstrip('e')}ed"
        else:
            status = "exists"
        self.outcomes.append(Outcome(resource, status, detail))

    def record_deleted(self, resource: str, present: bool, detail: str = "") -> None:
        if not present:
            status = "absent"
        else:
            status = "would delete" if self.dry_run else "deleted"
        self.outcomes.append(Outcome(resource, status, detail))
