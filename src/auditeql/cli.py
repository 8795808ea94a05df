"""The `auditeql` command line: a thin click group.

Each sub-command lives in its own module under ``auditeql.commands`` and is imported
lazily, so that ``auditeql query`` never pays for importing DuckDB or the netlink code.
The table below is the only place a command is registered.
"""

from __future__ import annotations

import importlib

import click

#: command name -> (module under auditeql.commands, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "query": ("query", "query", "Run an EQL query over ECS NDJSON or raw audit logs."),
    "normalize": ("normalize", "normalize", "Turn raw audit logs into ECS NDJSON (Auditbeat / Auditd Manager shape)."),
    "scan": ("scan", "scan", "Run detection rules over audit logs or ECS exports, as Kibana would."),
    "rules": ("rules", "rules", "List, show and validate detection rules."),
    "alerts": ("alerts", "alerts", "List and show alerts kept in the alert store."),
    "watch": ("watch", "watch", "Detect live: netlink, a followed audit.log, audisp or stdin."),
    "audit-rules": ("audit_rules", "audit_rules", "Print, write, install or remove the kernel audit rules the detection rules need."),
    "emulate": ("emulate", "emulate", "Run real UDP reverse-shell techniques against a namespaced test host."),
    "convert": ("convert", "convert", "Convert ECS NDJSON or raw audit logs to Parquet."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module_name, attr, _help = entry
        try:
            module = importlib.import_module(f"auditeql.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"auditeql.commands.{module_name}":
                return None
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="auditeql")
def main() -> None:
    """Run Elastic Security detection rules on Linux audit data."""


if __name__ == "__main__":  # pragma: no cover
    main()
