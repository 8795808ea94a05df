"""Soak: millions of real audit events through ``watch``, with log rotation and a restart in the middle.

    .venv/bin/python benchmarks/soak.py                      # 10 million events (long: see the rate it prints)
    .venv/bin/python benchmarks/soak.py --events 300000      # a short check

The input is the real recording ``udp-shells-1`` replicated (benchmarks/data.py: every copy shifted
in time, serial and pid, so every copy raises its own alerts with their own ids). A writer appends
it to ``audit.log`` the way auditd does and rotates the file like auditd (``audit.log`` ->
``audit.log.1`` -> … up to ``--num-logs``) every ``--rotate-lines`` lines, while
``watch --source file:audit.log`` follows it with a checkpoint and an alert store. In the middle the
watcher is killed (SIGKILL by default: nothing saved at exit) and restarted while the writer keeps
writing. At the end every expected alert must have arrived exactly once: the count of alert
documents is ``copies x`` the count one copy gives (measured first, on one copy through
``watch -``), and no alert id appears twice. Exit status 0 = proven, 1 = not.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402

AUDITEQL = [sys.executable, "-m", "auditeql.cli"]


SEED = HERE.parent / "src" / "auditeql" / "rules" / "builtin" / "execution_shell_via_udp_cli_utility_linux.toml"


def soak_rule(work: Path) -> Path:
    """The seed rule with ``max_signals`` raised: the soak feeds days of event time in minutes, and
    watch caps alerts per rule interval like Kibana, which would hide alerts from the count."""
    text = SEED.read_text()
    if "max_signals = 100\n" not in text:
        raise SystemExit(f"{SEED}: expected 'max_signals = 100'")
    out = work / "seed-soak.toml"
    out.write_text(text.replace("max_signals = 100\n", "max_signals = 100000\n"))
    return out


def per_copy_alerts(lines: list[bytes], work: Path) -> int:
    """Alert documents one copy raises, through ``watch -`` (the reference count)."""
    now = int(time.time() * 1000)
    two = b"".join(_copy(0, lines, now)) + b"".join(_copy(1, lines, now + 100))
    res = subprocess.run(
        [*AUDITEQL, "watch", "--source", "-", "--no-store", "--format", "ndjson", "--health-interval", "0",
         "--no-builtin", "--rule", str(work / "seed-soak.toml"), "--host-id", data.HOST_ID],
        input=two, capture_output=True, timeout=600, env={**os.environ, "XDG_STATE_HOME": str(work / "ref")},
    )
    if res.returncode != 0:
        raise SystemExit(f"reference watch failed: {res.stderr.decode(errors='replace')[-2000:]}")
    ids = [orjson.loads(x)["kibana.alert.uuid"] for x in res.stdout.splitlines() if x.strip()]
    if not ids or len(ids) % 2 or len(set(ids)) != len(ids):
        raise SystemExit(f"reference run is not two equal copies ({len(ids)} alerts)")
    return len(ids) // 2


class Watcher:
    def __init__(self, log: Path, work: Path, out: Path) -> None:
        self.cmd = [*AUDITEQL, "watch", "--source", f"file:{log}", "--from-start", "--checkpoint", str(work / "cp.json"),
                    "--store", str(work / "alerts.db"), "--format", "ndjson", "--output", str(out),
                    "--health-interval", "30", "--no-builtin", "--rule", str(work / "seed-soak.toml"),
                    "--host-id", data.HOST_ID]
        self.err = open(work / "watch.err", "ab")  # noqa: SIM115
        self.env = {**os.environ, "XDG_STATE_HOME": str(work / "xdg")}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start watching; return once it has opened the log (writing earlier could race a rotation)."""
        mark = (self.err.name and Path(self.err.name).stat().st_size) or 0
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=self.err, env=self.env,
                                     start_new_session=True)
        end = time.monotonic() + 300
        while time.monotonic() < end and self.proc.poll() is None:
            with open(self.err.name, "rb") as fh:
                fh.seek(mark)
                if b"watching" in fh.read():
                    return
            time.sleep(0.2)
        raise SystemExit("watch did not start; see watch.err")

    def kill(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=60)


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def rotate(log: Path, num_logs: int) -> None:
    """auditd's rotation: audit.log.(n-1) -> .n, …, audit.log -> audit.log.1; a new audit.log."""
    oldest = log.with_name(f"{log.name}.{num_logs - 1}")
    if oldest.exists():
        oldest.unlink()
    for k in range(num_logs - 2, 0, -1):
        src = log.with_name(f"{log.name}.{k}")
        if src.exists():
            src.rename(log.with_name(f"{log.name}.{k + 1}"))
    log.rename(log.with_name(f"{log.name}.1"))
    log.touch()


def main() -> int:
    ap = argparse.ArgumentParser(description="soak test of watch (file source, rotation, restart)")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--rotate-lines", type=int, default=500_000, help="rotate audit.log every N lines")
    ap.add_argument("--num-logs", type=int, default=5, help="rotated files kept (auditd num_logs)")
    ap.add_argument("--restart-at", type=float, default=0.5, help="fraction of the input at which to kill and restart")
    ap.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
    ap.add_argument("--work", type=Path, default=None, help="working directory (default: a new temp dir)")
    args = ap.parse_args()

    lines = data.corpus_lines()
    events_per_copy = len({ln.split(b"msg=audit(", 1)[1].split(b")", 1)[0] for ln in lines if b"msg=audit(" in ln})
    copies = max(2, -(-args.events // events_per_copy))
    work = args.work or Path(tempfile.mkdtemp(prefix="auditeql-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    log, out = work / "audit.log", work / "alerts.ndjson"
    soak_rule(work)
    per_copy = per_copy_alerts(lines, work)
    expected = per_copy * copies
    print(f"soak: {copies} copies x {events_per_copy} events = {copies * events_per_copy:,} events, "
          f"{copies * len(lines):,} records; expecting {expected:,} alert documents ({per_copy} per copy); work dir {work}")

    log.touch()
    watcher = Watcher(log, work, out)
    watcher.start()
    t0 = time.monotonic()
    written = since_rotation = last_ms = 0
    restart_line = int(args.restart_at * copies * len(lines))
    restarted = False
    fh = open(log, "ab")  # noqa: SIM115
    try:
        for k in range(copies):
            now_ms = max(int(time.time() * 1000), last_ms + 100)
            chunk = b"".join(_copy(k, lines, now_ms))
            last_ms = now_ms
            fh.write(chunk)
            fh.flush()
            written += len(lines)
            since_rotation += len(lines)
            if not restarted and written >= restart_line:
                watcher.kill(signal.SIGKILL if args.signal == "KILL" else signal.SIGTERM)
                print(f"  killed ({args.signal}) after {written:,} records written; restarting")
                restarted = True
                watcher.start()
            if since_rotation >= args.rotate_lines:
                # do not let the writer get further ahead than the rotated files the reader can still find
                _wait_for(out, per_copy * (k + 1 - copies_per_rotation(args, lines) * (args.num_logs - 2)), watcher)
                fh.close()
                rotate(log, args.num_logs)
                fh = open(log, "ab")  # noqa: SIM115
                since_rotation = 0
            if k % 50 == 0:
                got = count_lines(out)
                rate = got / per_copy * events_per_copy / max(time.monotonic() - t0, 1e-9)
                print(f"  copy {k + 1}/{copies}: {got:,} alert documents so far (~{rate:,.0f} events/s)", flush=True)
    finally:
        fh.close()
    ok = _wait_for(out, expected, watcher, stall_s=300)
    if watcher.proc and watcher.proc.poll() is None:
        watcher.kill(signal.SIGTERM)
    elapsed = time.monotonic() - t0
    ids = [orjson.loads(x)["kibana.alert.uuid"] for x in out.read_bytes().splitlines() if x.strip()]
    counts = Counter(ids)
    repeated = sum(1 for n in counts.values() if n > 1)
    print(f"soak: {len(ids):,} alert documents ({len(counts):,} distinct) of {expected:,} expected; "
          f"{repeated} repeated; {elapsed:.0f} s ({copies * events_per_copy / elapsed:,.0f} events/s); restart: {restarted}")
    proven = ok and repeated == 0 and len(counts) == expected and len(ids) == expected
    print("soak: every expected alert arrived exactly once" if proven else "soak: FAILED")
    return 0 if proven else 1


def copies_per_rotation(args: argparse.Namespace, lines: list[bytes]) -> int:
    return max(1, args.rotate_lines // len(lines))


def _copy(k: int, lines: list[bytes], start_ms: int):  # noqa: ANN202
    """Copy number ``k`` as live data: its records stamped from ``start_ms`` on (the recording's
    80 s squeezed into 80 ms, order kept), serials and pids moved past the previous copies'.

    ``watch`` follows a live log: it windows on event time against the clock, so replayed
    timestamps from the past would be (rightly) treated as late."""
    import re

    _, dn = data.period(lines)
    t0 = min(int(m.group(1)) * 1000 + int(m.group(2)) for m in (_HDR.search(x) for x in lines) if m)
    shift_n, shift_pid = k * dn, k * data.PID_STRIDE
    pids = re.compile(rb" (pid|ppid)=(\d+)")

    def stamp(m: re.Match[bytes]) -> bytes:
        ms = start_ms + (int(m.group(1)) * 1000 + int(m.group(2)) - t0) // 1000
        return b"msg=audit(%d.%03d:%d)" % (ms // 1000, ms % 1000, int(m.group(3)) + shift_n)

    for line in lines:
        line = _HDR.sub(stamp, line, count=1)
        if line.startswith(b"type=SYSCALL "):
            body, sep, tail = line.partition(b"\x1d")
            line = pids.sub(lambda m: b" %s=%d" % (m.group(1), int(m.group(2)) + shift_pid), body) + sep + tail
        yield line


_HDR = __import__("re").compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")


def _wait_for(out: Path, target: int, watcher: Watcher, stall_s: float = 600) -> bool:
    """Wait until ``out`` holds ``target`` alert documents; False if no progress for ``stall_s``."""
    last, last_change = -1, time.monotonic()
    while True:
        got = count_lines(out)
        if got >= target:
            return True
        if got != last:
            last, last_change = got, time.monotonic()
        if time.monotonic() - last_change > stall_s:
            return False
        if watcher.proc is not None and watcher.proc.poll() is not None:
            return False
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
