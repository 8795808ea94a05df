"""Host metadata (``host.*``) and uid/gid names, like Beats' ``add_host_metadata`` and ``ResolveIDs``.

Audit records do not name their host; Auditbeat and Auditd Manager add ``host.*`` from the machine
they run on. Detection rules need ``host.os.type`` and group alerts by ``host.id``, so every
document gets them. For logs copied from another machine, ``--host-id`` / ``--host-name`` describe
the source host instead (and then nothing else about the local machine is claimed). A ``node=``
prefix on a record names its host: such documents get ``host.name``/``host.hostname`` = node and,
unless ``--host-id`` is given, a stable ``host.id`` derived from the node name (see
docs/deviations.md) — the local machine-id would be wrong for them.

User and group names are looked up in the local passwd/group databases (uid/gid 0 is always
``root``), as go-libaudit does on the collecting machine.
"""

from __future__ import annotations

import grp
import hashlib
import platform
import pwd
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MACHINE_ID_PATHS = ("/etc/machine-id", "/var/lib/dbus/machine-id", "/var/db/dbus/machine-id")


def read_machine_id() -> str | None:
    for path in _MACHINE_ID_PATHS:
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return None


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, eq, value = line.partition("=")
            if eq:
                out[key.strip()] = value.strip().strip('"')
        break
    return out


_FAMILIES = {"debian": "debian", "ubuntu": "debian", "rhel": "redhat", "fedora": "redhat", "centos": "redhat",
             "suse": "suse", "opensuse": "suse", "arch": "arch", "alpine": "alpine"}


def node_host_id(node: str) -> str:
    """A stable 32-hex-digit id for a host known only by its ``node=`` name."""
    return hashlib.md5(b"auditeql-node:" + node.encode()).hexdigest()


@dataclass
class HostInfo:
    """What goes into ``host.*``, plus cached uid/gid → name lookups."""

    fields: dict[str, Any]
    local: bool = True
    host_id_override: str | None = None
    _users: dict[str, str] = field(default_factory=lambda: {"0": "root"}, repr=False)
    _groups: dict[str, str] = field(default_factory=lambda: {"0": "root"}, repr=False)
    _node_cache: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def detect(cls, host_id: str | None = None, host_name: str | None = None) -> HostInfo:
        """This machine's metadata, or only the given id/name for logs from another host."""
        if host_id is not None or host_name is not None:
            fields: dict[str, Any] = {"os": {"type": "linux"}}
            if host_id is not None:
                fields["id"] = host_id
            if host_name is not None:
                fields["name"] = host_name
                fields["hostname"] = host_name
            return cls(fields, local=False, host_id_override=host_id)
        hostname = socket.gethostname()
        rel = _os_release()
        os_id = rel.get("ID", "")
        family = _FAMILIES.get(os_id) or next(
            (_FAMILIES[x] for x in rel.get("ID_LIKE", "").split() if x in _FAMILIES), os_id
        )
        os_fields = {"type": "linux", "kernel": platform.release()}
        for key, src in (("name", "NAME"), ("version", "VERSION"), ("codename", "VERSION_CODENAME"), ("platform", "ID")):
            if rel.get(src):
                os_fields[key] = rel[src]
        if family:
            os_fields["family"] = family
        fields = {"hostname": hostname, "name": hostname, "architecture": platform.machine(), "os": os_fields}
        mid = read_machine_id()
        if mid:
            fields["id"] = mid
        return cls(fields)

    @classmethod
    def fixed(cls, fields: dict[str, Any]) -> HostInfo:
        """Given fields verbatim (tests, replays)."""
        return cls(fields, local=False, host_id_override=fields.get("id"))

    def for_node(self, node: str | None) -> dict[str, Any]:
        """``host.*`` for a document whose record carried ``node=<node>`` (or none)."""
        if node is None or node == self.fields.get("name"):
            return self.fields
        cached = self._node_cache.get(node)
        if cached is None:
            cached = {"name": node, "hostname": node, "os": {"type": "linux"},
                      "id": self.host_id_override or node_host_id(node)}
            self._node_cache[node] = cached
        return cached

    def user_name(self, uid: str) -> str:
        name = self._users.get(uid)
        if name is None:
            name = ""
            if uid.isdigit():
                try:
                    name = pwd.getpwuid(int(uid)).pw_name
                except (KeyError, OverflowError):
                    pass
            self._users[uid] = name
        return name

    def group_name(self, gid: str) -> str:
        name = self._groups.get(gid)
        if name is None:
            name = ""
            if gid.isdigit():
                try:
                    name = grp.getgrgid(int(gid)).gr_name
                except (KeyError, OverflowError):
                    pass
            self._groups[gid] = name
        return name

    def user_id(self, name: str) -> str:
        try:
            return str(pwd.getpwnam(name).pw_uid)
        except KeyError:
            return ""
