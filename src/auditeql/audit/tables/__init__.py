"""Lookup tables for audit normalization, loaded once from the JSON files beside this module.

Why data files: record types, syscall numbers per architecture, errno names and the
normalization table are facts that change with kernels and with go-libaudit, not logic.
``_generate.py`` rebuilds the first four from the system's libaudit; ``normalizations.json``
is written by hand after go-libaudit's ``aucoalesce/normalizations.yaml`` (behaviour, our format).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent


def _load(name: str) -> Any:
    return json.loads((_HERE / name).read_text())


#: record type number -> auditd name ("SYSCALL")
RECORD_TYPE_NAMES: dict[int, str] = {int(k): v for k, v in _load("record_types.json").items()}
#: auditd name -> record type number
RECORD_TYPE_NUMBERS: dict[str, int] = {v: k for k, v in RECORD_TYPE_NAMES.items()}
#: positive errno -> name ("EINPROGRESS")
ERRNO_NAMES: dict[int, str] = {int(k): v for k, v in _load("errno.json").items()}
#: AUDIT_ARCH_* in lower-case hex as the kernel prints it, without leading zeros -> name
ARCH_NAMES: dict[str, str] = {k.lstrip("0") or "0": v for k, v in _load("arches.json").items()}
#: arch name -> syscall number -> name (only the arches go-libaudit has tables for)
SYSCALL_NAMES: dict[str, dict[int, str]] = {
    arch: {int(n): name for n, name in table.items()} for arch, table in _load("syscalls.json").items()
}

# Record type numbers used by code (kernel include/uapi/linux/audit.h).
SYSCALL = 1300
PATH = 1302
SOCKETCALL = 1304
CONFIG_CHANGE = 1305
SOCKADDR = 1306
CWD = 1307
EXECVE = 1309
EOE = 1320
SECCOMP = 1326
PROCTITLE = 1327
USER_CMD = 1123
USER_TTY = 1124
TTY = 1319
USER_LOGIN = 1112
AVC = 1400
LOGIN = 1006
CRED_DISP = 1104
USER_START = 1105
USER_END = 1106
LAST_DAEMON = 1299
ANOM_LOGIN_FAILURES = 2100


def type_name(record_type: int) -> str:
    """auditd's name for a record type, ``UNKNOWN[n]`` when it has none (as auditd writes it)."""
    name = RECORD_TYPE_NAMES.get(record_type)
    return name if name is not None else f"UNKNOWN[{record_type}]"


def arch_name(arch_hex: str) -> str:
    """``c000003e`` -> ``x86_64``; unknown arches as ``unknown[<hex>]`` like go-libaudit."""
    key = arch_hex.lower().lstrip("0") or "0"
    name = ARCH_NAMES.get(key)
    return name if name is not None else f"unknown[{arch_hex}]"


@cache
def normalizations() -> dict[str, Any]:
    """The normalization table (see normalizations.json)."""
    return _load("normalizations.json")
