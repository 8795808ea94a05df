"""Tables (data, not logic) for turning detection rules into kernel audit rules.

The kernel records a syscall only when an audit rule asks for it. Which syscalls a detection
rule needs is read off its filters: literal values compared to ``auditd.data.syscall`` are
syscall names; literal ``event.action`` values are go-libaudit normalizations, each produced
by the syscalls listed in :data:`ACTION_SYSCALLS` (from go-libaudit's normalizations table,
see ../../../shared/spec/audit-to-ecs.md §2.3–2.5 and §4).
"""

from __future__ import annotations

#: Fields whose literal values are syscall names.
SYSCALL_FIELDS: frozenset[str] = frozenset({"auditd.data.syscall"})
#: Fields whose literal values are go-libaudit ``event.action`` normalizations.
ACTION_FIELDS: frozenset[str] = frozenset({"event.action"})

#: event.action (go-libaudit normalization, aucoalesce/normalizations.yaml) -> syscalls producing it.
#: Actions that also come from non-syscall record types (e.g. KERN_MODULE) list only the syscalls.
ACTION_SYSCALLS: dict[str, tuple[str, ...]] = {
    "executed": ("execve", "execveat"),
    "connected-to": ("connect",),
    "bound-socket": ("bind",),
    "accepted-connection-from": ("accept", "accept4"),
    "listen-for-connections": ("listen",),
    "received-from": ("recvfrom", "recvmsg", "recvmmsg"),
    "sent-to": ("sendto", "sendmsg", "sendmmsg"),
    "opened-file": ("creat", "fallocate", "truncate", "ftruncate", "open", "openat", "readlink", "readlinkat"),
    "read-file": ("read",),
    "wrote-to-file": ("write",),
    "changed-file-attributes-of": ("setxattr", "fsetxattr", "lsetxattr", "removexattr", "fremovexattr", "lremovexattr"),
    "changed-file-permissions-of": ("chmod", "fchmod", "fchmodat"),
    "changed-file-ownership-of": ("chown", "fchown", "fchownat", "lchown"),
    "loaded-kernel-module": ("finit_module", "init_module"),
    "unloaded-kernel-module": ("delete_module",),
    "created-directory": ("mkdir", "mkdirat"),
    "mounted": ("mount",),
    "unmounted": ("umount2",),
    "renamed": ("rename", "renameat", "renameat2"),
    "symlinked": ("symlink", "symlinkat"),
    "deleted": ("rmdir", "unlink", "unlinkat"),
    "killed-pid": ("kill", "tkill", "tgkill"),
    "changed-identity-of": ("setuid", "setreuid", "setresuid", "setfsuid", "setgid", "setregid", "setresgid", "setfsgid"),
    "changed-system-time": ("settimeofday", "clock_settime", "adjtimex"),
    "make-device": ("mknod", "mknodat"),
    "changed-system-name": ("sethostname", "setdomainname"),
    "allocated-memory": ("mmap", "brk"),
    "adjusted-scheduling-policy-of": ("sched_setparam", "sched_setscheduler", "sched_setattr"),
}

#: Socket syscalls a 32-bit libc may route through ``socketcall(2)``; value = its ``a0``
#: (SYS_SOCKET = 1 … , include/uapi/linux/net.h). The real arguments are only in the SOCKETCALL record.
SOCKETCALL_CALLS: dict[str, int] = {
    "socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5, "getsockname": 6,
    "getpeername": 7, "socketpair": 8, "send": 9, "recv": 10, "sendto": 11, "recvfrom": 12,
    "shutdown": 13, "setsockopt": 14, "getsockopt": 15, "sendmsg": 16, "recvmsg": 17,
    "accept4": 18, "recvmmsg": 19, "sendmmsg": 20,
}

#: The two ABIs audited on a 64-bit kernel (``-F arch=b64`` / ``-F arch=b32``).
ABIS: tuple[str, ...] = ("b64", "b32")

#: Syscall names auditctl does not know for an ABI on x86_64 (checked with ``ausyscall --exact``):
#: they are left out of that ABI's rule instead of making auditctl fail. Other architectures
#: lack more legacy calls (aarch64 has no ``open``); :func:`~auditeql.watch.audit_rules.install`
#: drops a name auditctl reports unknown and says so.
ABSENT: dict[str, frozenset[str]] = {
    "b64": frozenset({"socketcall", "send", "recv", "umount"}),
    "b32": frozenset({"accept", "send", "recv"}),
}
