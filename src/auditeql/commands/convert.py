"""``auditeql convert --to parquet``: raw audit logs or ECS NDJSON -> Parquet in the pinned schema.

Why a command of its own: hunting over months means querying the same events many times;
converting once to columnar Parquet (with the original document kept as JSON text) lets DuckDB
and Spark skip the JSON parsing every later scan would repeat.
"""

from __future__ import annotations

import os
import sys

import click


@click.command("convert", help="Convert ECS NDJSON or raw audit logs to Parquet (the pinned auditeql schema).")
@click.argument("paths", nargs=-1, required=True)
@click.option("--to", "target", type=click.Choice(["parquet"]), default="parquet", show_default=True, help="Output format.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None, help="Output file (default: first input's name with .parquet).")
@click.option("--flavor", type=click.Choice(["auditd-manager", "auditbeat"]), default="auditd-manager", show_default=True, help="ECS shape for raw audit logs (as `scan`).")
@click.option("--host-id", default=None, help="host.id for raw audit logs (default: this machine's).")
@click.option("--host-name", default=None, help="host.name for raw audit logs (default: this machine's).")
@click.option("--via", type=click.Choice(["auto", "duckdb", "python"]), default="auto", show_default=True, help="Who parses ECS NDJSON: DuckDB (fast, auto when installed) or Python. Raw audit logs always go through the Python normalizer.")
@click.option("--batch-rows", default=65536, show_default=True, type=click.IntRange(1, None), help="Rows per Parquet row group batch.")
def convert(paths: tuple[str, ...], target: str, output: str | None, flavor: str, host_id: str | None, host_name: str | None, via: str, batch_rows: int) -> None:
    try:
        from auditeql.scale.parquet import write_parquet
    except ImportError as exc:  # pragma: no cover - pyarrow is an extra
        raise click.ClickException(f"{exc}; install the extra: pip install 'auditeql[duckdb]'") from None
    from auditeql.scale.inputs import classify, documents

    out = output or _default_output(paths)
    if os.path.abspath(out) in {os.path.abspath(p) for p in paths}:
        raise click.ClickException(f"output {out} would overwrite an input; choose another with -o")
    from auditeql.sources.files import InputError

    try:
        if via != "python" and "-" not in paths and host_id is None and host_name is None and _duckdb_ok(via):
            inputs = classify(paths)
            if inputs.ndjson and not inputs.other and not inputs.parquet:
                from auditeql.scale.parquet import convert_ndjson_with_duckdb

                n = convert_ndjson_with_duckdb(list(inputs.ndjson), out)
                click.echo(f"wrote {n} events to {out}", err=True)
                return
        n = write_parquet(documents(paths, flavor=flavor, host_id=host_id, host_name=host_name), out, batch_rows=batch_rows)
    except (InputError, OSError, ValueError) as exc:
        if os.path.exists(out):
            os.unlink(out)  # never leave a truncated file that looks like a conversion
        raise click.ClickException(f"{exc}; nothing written") from None
    click.echo(f"wrote {n} events to {out}", err=True)


def _duckdb_ok(via: str) -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        if via == "duckdb":
            raise click.ClickException("--via duckdb needs DuckDB: pip install 'auditeql[duckdb]'") from None
        return False
    return True


def _default_output(paths: tuple[str, ...]) -> str:
    first = paths[0]
    if first == "-":
        raise click.UsageError("reading stdin: give the output file with -o")
    base = os.path.basename(first)
    for ext in (".gz", ".ndjson", ".json", ".jsonl", ".log"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    return base + ".parquet"


if __name__ == "__main__":  # pragma: no cover
    convert(sys.argv[1:])
