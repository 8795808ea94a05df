"""``auditeql normalize``: raw audit logs → ECS NDJSON, one document per audit event.

The documents are what Auditd Manager (default) or Auditbeat would have indexed for the same
events, so the output can be queried with Elastic's rules as they are, loaded into Elasticsearch,
or kept as a fixture. A summary (events, records, skipped lines by reason) goes to stderr so that
stdout stays pure NDJSON.
"""

from __future__ import annotations

import io
import os
import sys
import typing
from typing import Any

import click
import orjson

from auditeql.audit.ecs import FLAVORS
from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer
from auditeql.sources.files import InputError, _open, _sniff, expand_paths


def _summary(stats: dict[str, Any]) -> str:
    skipped = stats.get("skipped") or {}
    parts = [f"{stats.get('events', 0)} events", f"{stats.get('records', 0)} records"]
    if skipped:
        detail = ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items()))
        parts.append(f"{sum(skipped.values())} lines skipped ({detail})")
    else:
        parts.append("0 lines skipped")
    if stats.get("reassembly_timeouts"):
        parts.append(f"{stats['reassembly_timeouts']} events completed by timeout")
    if stats.get("reassembly_evicted_in_flight"):
        parts.append(f"{stats['reassembly_evicted_in_flight']} released by the in-flight limit")
    if stats.get("ndjson_files"):
        parts.append(f"{stats['ndjson_files']} ECS NDJSON input(s) ignored (already normalized)")
    return "normalize: " + ", ".join(parts)


@click.command("normalize")
@click.option("--flavor", type=click.Choice(FLAVORS), default="auditd-manager", show_default=True,
              help="Document shape: Auditd Manager (logs-auditd_manager.auditd-*) or Auditbeat (auditbeat-*).")
@click.option("--host-id", default=None, help="host.id for logs copied from another machine (default: this machine's /etc/machine-id).")
@click.option("--host-name", default=None, help="host.name for logs copied from another machine (default: this machine's hostname).")
@click.option("--original", is_flag=True, help="Add event.original (the raw records), as Auditbeat's include_raw_message does.")
@click.argument("files", nargs=-1, type=str)
def normalize(flavor: str, host_id: str | None, host_name: str | None, original: bool, files: tuple[str, ...]) -> None:
    """Turn raw audit logs (FILE… or stdin) into ECS NDJSON on stdout.

    FILE may be plain or .gz, a glob, or '-' for stdin; a rotated set (audit.log audit.log.1
    audit.log.2.gz) is read oldest first whatever the order given.
    """
    host = HostInfo.detect(host_id=host_id, host_name=host_name)
    normalizer = Normalizer(flavor, host, original=original)
    # a buffered writer of our own: with PYTHONUNBUFFERED (or -u) sys.stdout.buffer makes one
    # system call per event, which costs more than building the document
    out = _buffered_stdout()
    dumps = orjson.dumps
    ndjson_inputs = 0
    try:
        paths = expand_paths(files or ("-",))
        for path in paths:
            stream = _open(path)
            try:
                kind, first = _sniff(stream)
                if kind == "ndjson":
                    ndjson_inputs += 1
                    click.echo(f"normalize: {path} is already ECS NDJSON; skipped (use 'auditeql query' on it directly)", err=True)
                    continue
                feed = normalizer.feed_line
                for chunk in (first, stream):
                    for line in chunk:
                        docs = feed(line)
                        if docs:
                            out.write(b"".join(dumps(d) + b"\n" for d in docs))
            except BrokenPipeError:
                raise
            except (OSError, EOFError) as exc:
                click.echo(f"normalize: {path}: read error ({exc}); documents before it were written", err=True)
            finally:
                if path != "-":
                    stream.close()
        docs = normalizer.flush()
        out.write(b"".join(dumps(d) + b"\n" for d in docs))
        out.flush()
    except InputError as exc:
        click.echo(f"normalize: {exc}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error; point stdout at /dev/null so the
        # final flush at exit cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    stats = dict(normalizer.stats)
    stats["ndjson_files"] = ndjson_inputs
    click.echo(_summary(stats), err=True)


def _buffered_stdout() -> io.BufferedWriter | typing.BinaryIO:
    """stdout's file descriptor behind a 64 KiB buffer; stdout's own buffer when it has no descriptor."""
    try:
        return io.BufferedWriter(io.FileIO(sys.stdout.fileno(), "wb", closefd=False), 1 << 16)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return sys.stdout.buffer
