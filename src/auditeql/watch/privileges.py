"""Drop root once the privileged work is done (the audit socket is open, the outputs too).

The netlink multicast membership outlives the privileges that created it, so ``watch`` can
read the kernel's audit stream as an unprivileged user after opening the socket as root. What
is lost: the kernel counters in the health line (``AUDIT_GET`` checks the caller's
CAP_AUDIT_CONTROL on every request), and rule reloads can only read files that user may read.
"""

from __future__ import annotations

import os
import pwd


class PrivilegeError(RuntimeError):
    """The user does not exist or the switch failed; the message says what to do."""


def drop_privileges(user: str) -> tuple[int, int]:
    """Become ``user`` (name or uid): supplementary groups, gid, then uid. Returns (uid, gid)."""
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError):
        raise PrivilegeError(f"--user {user}: no such user; create it (useradd --system {user}) or pick another") from None
    if os.geteuid() != 0:
        if os.geteuid() == entry.pw_uid:
            return entry.pw_uid, entry.pw_gid
        raise PrivilegeError(f"--user {user}: only root can switch users (running as uid {os.geteuid()})")
    try:
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except OSError as exc:
        raise PrivilegeError(f"--user {user}: cannot switch: {exc.strerror}") from exc
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - would mean the drop did not stick
        raise PrivilegeError(f"--user {user}: root could be regained after the switch; refusing to run")
    os.environ["HOME"] = entry.pw_dir
    return entry.pw_uid, entry.pw_gid
