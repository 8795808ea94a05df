"""The one-pass Auditd Manager document equals the reference two-step route, byte for byte.

``build_document(ev, "auditd-manager")`` builds the AM document directly (for speed); the
reference is ``to_auditd_manager(auditbeat_document(ev))`` — the ingest pipeline applied to the
Auditbeat document. Same keys, same values, same key order (compared as serialized JSON), on the
real recording, the fixture recordings and handcrafted edge cases (dashed keys, empty values,
SELinux contexts, unix sockets, user-space records with ECS user mappings).
"""

from __future__ import annotations

import orjson
import pytest

from auditeql.audit.coalesce import coalesce
from auditeql.audit.ecs import auditbeat_document, build_document, to_auditd_manager
from auditeql.audit.host import HostInfo
from auditeql.audit.reassembly import Reassembler
from auditeql.audit.records import AuditRecord, parse_line

from .conftest import FIXTURES

EDGE = b"""\
type=USER_START msg=audit(1700000000.100:500): pid=123 uid=0 auid=1000 ses=3 subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 msg='op=PAM:session_open grantors=pam_selinux acct="root" exe="/usr/bin/sudo" hostname=? addr=? terminal=/dev/pts/0 res=success'
type=USYS_CONFIG msg=audit(1700000000.139:539): pid=14 uid=0 auid=1000 ses=3 msg='op=changing-x new-auid=5 old-auid=6 foo-bar="" res=success'
type=ADD_GROUP msg=audit(1700000000.114:514): pid=3005 uid=0 auid=1000 ses=3 msg='op=adding group acct="bob" exe="/usr/sbin/groupadd" hostname=h addr=? terminal=pts/0 res=success'
type=SYSCALL msg=audit(1700000000.106:506): arch=c000003e syscall=2 success=no exit=-13 a0=7ffd a1=0 items=1 ppid=1 pid=2000 auid=4294967295 uid=48 gid=48 euid=48 suid=48 fsuid=48 egid=48 sgid=48 fsgid=48 tty=(none) ses=4294967295 comm="httpd" exe="/usr/sbin/httpd" subj=system_u:system_r:httpd_t:s0 key=(null)
type=PATH msg=audit(1700000000.106:506): item=0 name="/var/www/index.html" inode=12345 dev=08:01 mode=0100644 ouid=1000 ogid=1000 rdev=00:00 obj=unconfined_u:object_r:user_home_t:s0 nametype=NORMAL
type=PROCTITLE msg=audit(1700000000.106:506): proctitle=2F7573722F7362696E2F6874747064
type=SYSCALL msg=audit(1700000000.116:516): arch=c000003e syscall=43 success=yes exit=4 a0=3 items=0 ppid=1 pid=4001 auid=1000 uid=1000 gid=1000 euid=0 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="sshd" exe="/usr/sbin/sshd" key="key=acc"
type=SOCKADDR msg=audit(1700000000.116:516): saddr=01002F746D702F736F636B00
type=PROCTITLE msg=audit(1700000000.116:516): proctitle=737368640000
type=SYSCALL msg=audit(1700000000.117:517): arch=c000003e syscall=42 success=no exit=-111 a0=3 items=0 ppid=1 pid=4000 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=6E63 exe="/usr/bin/nc" key=6E6574017564700173686C
type=SOCKADDR msg=audit(1700000000.117:517): saddr=0A000035000000002001486048600000000000000000888800000000
type=PROCTITLE msg=audit(1700000000.117:517): proctitle="nc"
"""


def _events(lines: list[bytes]):
    r = Reassembler()
    groups: list[list[AuditRecord]] = []
    for line in lines:
        rec = parse_line(line)
        if isinstance(rec, AuditRecord):
            groups.extend(r.push(rec))
    groups.extend(r.flush())
    return [coalesce(g) for g in groups]


def _lines() -> list[bytes]:
    lines = EDGE.splitlines()
    for name in ("enriched.log", "raw_node.log"):
        lines += (FIXTURES / name).read_bytes().splitlines()
    return lines


@pytest.mark.parametrize("host", [HostInfo.detect(), None, HostInfo.detect(host_id="abc", host_name="h")], ids=["local", "none", "remote"])
@pytest.mark.parametrize("original", [False, True])
def test_one_pass_equals_reference(host: HostInfo | None, original: bool) -> None:
    events = _events(_lines())
    assert len(events) > 100
    for ev in events:
        reference = to_auditd_manager(auditbeat_document(ev, host, original=original))
        assert orjson.dumps(build_document(ev, "auditd-manager", host, original=original)) == orjson.dumps(reference)


def test_one_pass_equals_reference_on_the_corpus(corpus_lines: list[bytes], local_host: HostInfo) -> None:
    events = _events(corpus_lines)
    assert len(events) == 3144
    for ev in events:
        reference = to_auditd_manager(auditbeat_document(ev, local_host))
        assert orjson.dumps(build_document(ev, "auditd-manager", local_host)) == orjson.dumps(reference)


def test_documents_stay_independent_when_held() -> None:
    # user.* nested objects are shared between documents (copy-on-write): holding documents and
    # serializing them later must give what serializing them at once gave
    events = _events(_lines())
    host = HostInfo.detect()
    at_once, held = [], []
    for ev in events:
        doc = build_document(ev, "auditd-manager", host)
        at_once.append(orjson.dumps(doc))
        held.append(doc)
    assert [orjson.dumps(d) for d in held] == at_once
