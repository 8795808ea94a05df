"""`auditeql alerts list|show`: the alerts kept in the store across scans and watches."""

from __future__ import annotations

import sys

import click
import orjson


@click.group("alerts")
def alerts() -> None:
    """List and show alerts kept in the alert store."""


def _open(store_path: str | None):  # type: ignore[no-untyped-def]
    import os

    from auditeql.alerts.store import AlertStore, StoreError, default_path

    path = store_path or default_path()
    if not os.path.exists(path):
        click.echo(f"auditeql alerts: no alert store at {path} yet (run `auditeql scan` first, or pass --store PATH)", err=True)
        sys.exit(2)
    try:
        return AlertStore(path)
    except StoreError as exc:
        click.echo(f"auditeql alerts: error: {exc}", err=True)
        sys.exit(2)


_store_opt = click.option("--store", "store_path", metavar="PATH", help="Alert store (default: $XDG_STATE_HOME/auditeql/alerts.db).")


@alerts.command("list")
@_store_opt
@click.option("--rule-id", metavar="ID", help="Only alerts of this rule.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "ndjson"]), default="table", show_default=True)
def list_alerts(store_path: str | None, rule_id: str | None, limit: int, fmt: str) -> None:
    """Alert groups, newest first (one row per shell or single-event alert)."""
    from auditeql.alerts.sinks import write_ndjson, write_table

    with _open(store_path) as store:
        heads = store.groups(rule_id=rule_id, limit=limit)
        docs = []
        for h in heads:
            docs.extend(a.doc for a in store.group(h.uuid))
    if fmt == "ndjson":
        write_ndjson(docs, sys.stdout.buffer)
    else:
        write_table(docs, sys.stdout)


@alerts.command("show")
@click.argument("uuid")
@_store_opt
def show_alert(uuid: str, store_path: str | None) -> None:
    """One alert (by uuid or a unique prefix) and, for a group, its building blocks, as JSON."""
    with _open(store_path) as store:
        matches = store.find(uuid)
        if len(matches) > 1:
            click.echo(f"auditeql alerts: {len(matches)} alerts start with {uuid!r}; give more characters", err=True)
            sys.exit(2)
        found = store.group(matches[0].uuid) if matches else []
    if not found:
        click.echo(f"auditeql alerts: no alert with uuid {uuid!r}; see `auditeql alerts list`", err=True)
        sys.exit(2)
    for a in found:
        sys.stdout.write(orjson.dumps(a.doc, option=orjson.OPT_INDENT_2).decode() + "\n")
