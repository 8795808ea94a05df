"""Regenerate the audit lookup tables in this directory (run once, by hand, as data).

Why generated: the numbers behind record types, syscalls per architecture and errno names are
facts owned by the kernel and by the Linux audit userspace. We take them from the installed
``libaudit.so.1`` (Debian package ``libaudit1``) through ctypes, the same library ``ausearch -i``
uses, so our names agree with the system tools. The result is committed JSON; nothing at run
time depends on libaudit.

Usage: ``python -m auditeql.audit.tables._generate`` (writes the JSON files next to this module).
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

HERE = Path(__file__).parent

# AUDIT_ARCH_* values (kernel include/uapi/linux/audit.h, EM_* | __AUDIT_ARCH_64BIT/LE) -> the
# lower-case names go-libaudit reports in auditd.data.arch.
ARCHES = {
    "c00000b7": "aarch64", "c0009026": "alpha", "40000028": "arm", "00000028": "armeb",
    "4000004c": "cris", "00005441": "frv", "40000003": "i386", "c0000032": "ia64",
    "00000058": "m32r", "00000004": "m68k", "000000bd": "microblaze", "00000008": "mips",
    "40000008": "mipsel", "80000008": "mips64", "a0000008": "mips64n32", "c0000008": "mipsel64",
    "e0000008": "mipsel64n32", "0000005c": "openrisc", "0000000f": "parisc", "8000000f": "parisc64",
    "00000014": "ppc", "80000015": "ppc64", "c0000015": "ppc64le", "400000f3": "riscv32",
    "c00000f3": "riscv64", "00000016": "s390", "80000016": "s390x", "0000002a": "sh",
    "4000002a": "shel", "8000002a": "sh64", "c000002a": "shel64", "00000002": "sparc",
    "8000002b": "sparc64", "c00000bf": "tilegx", "400000bf": "tilegx32", "400000bc": "tilepro",
    "4000006e": "unicore", "c000003e": "x86_64", "0000005e": "xtensa",
}

# arch name (as above) -> libaudit machine number; only the tables go-libaudit ships are kept,
# so that other arches keep a numeric syscall exactly as Auditbeat does.
MACHINES = {"i386": 0, "x86_64": 1, "ppc": 4, "s390x": 5, "s390": 6, "arm": 8, "aarch64": 9}


def main() -> None:
    lib = ctypes.CDLL("libaudit.so.1")
    for fn in ("audit_msg_type_to_name", "audit_errno_to_name", "audit_syscall_to_name"):
        getattr(lib, fn).restype = ctypes.c_char_p

    types = {}
    for num in range(1000, 3000):
        name = lib.audit_msg_type_to_name(num)
        if name:
            types[str(num)] = name.decode()
    # kernel types libaudit does not name (include/uapi/linux/audit.h)
    for num, name in {1329: "REPLACE"}.items():
        types.setdefault(str(num), name)
    types = dict(sorted(types.items(), key=lambda kv: int(kv[0])))
    errnos = {}
    for num in range(1, 4096):
        name = lib.audit_errno_to_name(num)
        if name:
            errnos[str(num)] = name.decode()
    syscalls: dict[str, dict[str, str]] = {}
    for arch, machine in MACHINES.items():
        table = {}
        for num in range(0, 1100):
            name = lib.audit_syscall_to_name(num, machine)
            if name:
                table[str(num)] = name.decode()
        syscalls[arch] = table

    def dump(name: str, obj: object) -> None:
        (HERE / name).write_text(json.dumps(obj, indent=0, sort_keys=False) + "\n")

    dump("record_types.json", types)
    dump("errno.json", errnos)
    dump("syscalls.json", syscalls)
    dump("arches.json", ARCHES)


if __name__ == "__main__":
    main()
