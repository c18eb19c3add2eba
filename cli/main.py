"""The `layerjoule` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        # The board-side runner, as on the board (`python3 -m runner ...`): all its options pass through.
        from runner.cli import main as runner_main

        return runner_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    from importer.errors import InputError

    try:
        return args.handler(args) or 0
    except InputError as error:
        print(f"layerjoule {args.command}: {error.one_line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"layerjoule {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (like every other error of the command), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="layerjoule", description="Per-layer energy profiling of ConvNet inference.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", help="store: a DuckDB file, or a team store ducklake:postgres:KEY=VALUE ... "
                                       "(docs/team-store.md); default: $LAYERJOULE_DB, else "
                                       "~/.local/share/layerjoule/layerjoule.duckdb")
        sub.set_defaults(handler=handler)
        return sub

    sub = command("import", cmd_import, "Import runs into the store (all or nothing): run bundles, and Streamline "
                                        "captures, reports and rail logs that join a run (docs/alignment.md).")
    sub.add_argument("sources", nargs="+", metavar="SOURCE",
                     help="a run bundle, Streamline capture (.apc folder or zip) or report, tegrastats log, power "
                          "CSV, energy probe CSV or PTDaemon log; KIND:PATH names the format (KIND one of "
                          "bundle, streamline-capture, streamline-report, tegrastats, power-csv, energy-probe, "
                          "ptdaemon)")
    sub.add_argument("--offset-ms", type=float, help="where a log with relative times starts, in ms after the run's "
                                                     "first event; a correction on top of automatic alignment")
    sub.add_argument("--interval-ms", type=float, help="tegrastats --interval of a log without time stamps")
    sub.add_argument("--utc-offset-minutes", type=float, default=0.0,
                     help="board local time minus UTC, for logs stamped with local time (default 0)")
    sub.add_argument("--time-column", help="power CSV: the time column")
    sub.add_argument("--power-columns", help="power CSV: comma-separated power columns")
    sub.add_argument("--unit", choices=["mW", "W"], help="power CSV / energy probe: the power unit")
    sub.add_argument("--column-map", help="Streamline report: KEY=COLUMN pairs, comma-separated "
                                          "(keys: time, duration, text, group, channel, thread, core, time_unit)")
    sub.add_argument("--sample-rate-hz", type=float, help="energy probe CSV without a time column")
    sub.add_argument("--network", help="a run from a capture alone: the network's name")
    sub.add_argument("--model", metavar="PROTOTXT", help="a run from a capture alone: its prototxt (model cost)")
    sub.add_argument("--bytes-per-access", type=_positive_int, default=64,
                     help="bytes per memory/bus access counted, for measured bandwidth (default 64)")
    sub.add_argument("--name", help="name of the run (default: the bundle's folder or file name)")
    sub.add_argument("--owner", help="who made the run (default: $LAYERJOULE_USER, else the login name)")
    sub.add_argument("--team", help="the team the run belongs to (default: $LAYERJOULE_TEAM, else none)")
    sub.add_argument("--tag", action="append", default=[], help="a tag; repeat for several")
    sub.add_argument("--json", action="store_true", help="print a JSON list of {run_id, name, status}")

    sub = command("runs", cmd_runs, "List the runs in the store.")
    sub.add_argument("--json", action="store_true", help="print a JSON list of runs")

    sub = command("report", cmd_report, "Per-layer time and energy statistics of one run.")
    sub.add_argument("run_id", metavar="RUN_ID")
    sub.add_argument("--format", choices=["table", "csv", "json"], default="table")

    sub = commands.add_parser("analyze", help="Per-layer shapes, MACs, FLOPs, parameters and memory traffic of a "
                                              "Caffe prototxt (no store needed).")
    sub.set_defaults(handler=cmd_analyze)
    sub.add_argument("model", metavar="MODEL.prototxt")
    sub.add_argument("--weights", metavar="W.caffemodel", help="check the blob shapes of a trained model")
    sub.add_argument("--input-shape", type=_shape, metavar="N,C,H,W", help="shape of the first input")
    sub.add_argument("--batch", type=_positive_int, metavar="N", help="batch size of every input")
    sub.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32", help="element size for bytes")
    sub.add_argument("--allow-unknown", action="store_true",
                     help="treat unknown layer types as shape-preserving and free (a warning each)")
    sub.add_argument("--format", choices=["table", "csv", "json"], default="table")

    commands.add_parser("run", add_help=False,
                        help="Run a per-layer measurement and write a run bundle (the same command as "
                             "`python3 -m runner` on the board; `layerjoule run --help` lists its options).")

    sub = command("delete", cmd_delete, "Delete runs with all their rows (all or none): your own runs, or any "
                                        "as an admin of the store (docs/team-store.md).")
    sub.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    sub.add_argument("--user", help="who is deleting (default: $LAYERJOULE_USER, else the login name)")

    db = commands.add_parser("db", help="The store itself: info, migrate, copy runs between stores, admins.",
                             description="The store itself (docs/team-store.md).")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND",
                                    parser_class=OneLineParser)

    def db_command(name: str, handler, help_text: str, with_db: bool = True) -> argparse.ArgumentParser:
        sub = db_commands.add_parser(name, help=help_text, description=help_text)
        if with_db:
            sub.add_argument("--db", help="store: a DuckDB file or a team store URL (default: $LAYERJOULE_DB, else "
                                           "~/.local/share/layerjoule/layerjoule.duckdb)")
        sub.set_defaults(handler=handler)
        return sub

    sub = db_command("info", cmd_db_info, "What the store is, its schema version, its runs per owner and team, its "
                                          "admins (reads only).")
    sub.add_argument("--json", action="store_true", help="print a JSON object")
    db_command("migrate", cmd_db_migrate, "Bring the store's schema up to this layerjoule's version.")
    sub = db_command("copy", cmd_db_copy, "Copy runs with all their rows from one store to another (one "
                                          "transaction; a run already there is left alone).", with_db=False)
    sub.add_argument("--from", dest="source", required=True, metavar="STORE", help="the store to copy from")
    sub.add_argument("--to", dest="target", required=True, metavar="STORE", help="the store to copy to")
    sub.add_argument("--run", dest="run_ids", action="append", metavar="RUN_ID",
                     help="a run to copy; repeat for several (default: every run)")
    sub.add_argument("--json", action="store_true", help="print a JSON list of {run_id, name, status}")
    sub = db_command("s3-secret", cmd_db_s3_secret, "Keep S3 credentials on this machine for team stores whose "
                                                     "data_path is s3://... (a DuckDB persistent secret of your user).",
                     with_db=False)
    sub.add_argument("--name", default="layerjoule_s3", help="the secret's name (default: layerjoule_s3)")
    sub.add_argument("--region", help="the bucket's region, e.g. eu-west-1")
    sub.add_argument("--endpoint", help="HOST:PORT of an S3-compatible server (MinIO, Ceph...); default: AWS")
    sub.add_argument("--path-style", action="store_true", help="path-style URLs (most S3-compatible servers)")
    sub.add_argument("--no-ssl", action="store_true", help="plain HTTP to the endpoint (a server on a trusted LAN)")
    sub.add_argument("--scope", help="use these credentials only for URLs under this prefix, e.g. s3://team-lake")
    sub = db_command("admin", cmd_db_admin, "List, add or remove the store's admins (who may delete any run).")
    sub.add_argument("action", choices=["list", "add", "remove"])
    sub.add_argument("users", nargs="*", metavar="USER")
    sub.add_argument("--user", help="who is acting (default: $LAYERJOULE_USER, else the login name)")

    sub = command("app", cmd_app, "Start the dashboard (Streamlit).")
    sub.add_argument("--port", type=int, default=8501)
    return parser


def _pairs(text: str | None) -> dict[str, str] | None:
    from importer.errors import InputError

    if not text:
        return None
    pairs = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    if len(pairs) != len(text.split(",")):
        raise InputError(f"--column-map {text!r}: expected KEY=COLUMN pairs separated by commas")
    return pairs


def cmd_import(args) -> int:
    from importer.assemble import ImportOptions
    from importer.ingest import import_sources

    interactive = sys.stderr.isatty()

    def progress(message: str) -> None:
        # Progress goes to a terminal only, overwriting itself, so that logs and pipes get just the results.
        if interactive:
            print(f"\r\033[K  {message}", end="", file=sys.stderr, flush=True)

    options = ImportOptions(
        interval_ms=args.interval_ms, offset_ms=args.offset_ms, utc_offset_minutes=args.utc_offset_minutes,
        time_column=args.time_column, power_columns=args.power_columns.split(",") if args.power_columns else None,
        unit=args.unit, column_map=_pairs(args.column_map), sample_rate_hz=args.sample_rate_hz,
        network=args.network, model=Path(args.model) if args.model else None, bytes_per_access=args.bytes_per_access)
    try:
        results = import_sources(args.sources, db=args.db, name=args.name, owner=args.owner, tags=args.tag,
                                 progress=progress, options=options, team=args.team)
    finally:
        if interactive:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        for r in results:
            print(f"{r.status:16} {r.run_id}  {r.name}")
            for warning in r.warnings:
                print(f"  note: {warning}", file=sys.stderr)
    return 0


def cmd_runs(args) -> int:
    from importer.report import list_runs, records

    runs = list_runs(args.db)
    if args.json:
        print(json.dumps(records(runs)))
        return 0
    if runs.empty:
        print("no runs yet: import one with `layerjoule import BUNDLE`")
        return 0
    shown = runs[["run_id", "name", "network", "device", "engine", "mode", "simulated", "iterations",
                  "time_ms_per_inference", "energy_mj_per_inference"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    return 0


def cmd_report(args) -> int:
    from importer.report import records, run_report

    run, layers = run_report(args.run_id, args.db)
    if args.format == "json":
        print(json.dumps({"run": run, "layers": records(layers)}))
    elif args.format == "csv":
        sys.stdout.write(layers.to_csv(index=False))
    else:
        simulated = "  SIMULATED: not a measurement" if run["simulated"] else ""
        print(f"{run['name']} ({run['run_id']}): {run['network']} on {run['device']}, {run['engine']}, "
              f"{run['mode']} mode, {run['iterations']} iterations{simulated}")
        shown = layers[["index", "name", "type", "rail", "time_ms_mean", "time_ms_ci95", "energy_mj_mean",
                        "energy_mj_ci95", "energy_above_idle_mj_mean", "resolved"]].copy()
        # An unresolved figure is not a measurement: the table leaves it out (csv and json keep it, flagged).
        unresolved = shown["resolved"].eq(False).fillna(False).to_numpy(bool)
        shown.loc[unresolved, ["energy_mj_mean", "energy_mj_ci95", "energy_above_idle_mj_mean"]] = None
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
        if unresolved.any():
            print(f"{unresolved.sum()} rows unresolved: the layer lasts less than two sensor update intervals, so "
                  "its energy is not shown (--format csv or json give the stored, indicative figure)")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _shape(text: str) -> list[int]:
    try:
        return [_positive_int(part) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        message = f"{text!r} is not a shape; expected positive integers like 1,3,227,227"
        raise argparse.ArgumentTypeError(message) from None


def cmd_analyze(args) -> int:
    import pandas as pd

    from importer.model.cost import analyze
    from importer.model.net import read_caffemodel_shapes, read_prototxt

    network = read_prototxt(args.model)
    weight_shapes = read_caffemodel_shapes(args.weights) if args.weights else None
    analysis = analyze(network, input_shape=args.input_shape, batch=args.batch, dtype=args.dtype,
                       allow_unknown=args.allow_unknown, weight_shapes=weight_shapes)
    for warning in analysis.warnings:
        print(f"layerjoule analyze: warning: {warning}", file=sys.stderr)
    rows = [{
        "name": c.name, "type": c.type, "module": c.module,
        "output_shape": c.output_shapes[0] if c.output_shapes else None,
        "output_shapes": c.output_shapes, "macs": c.macs, "flops": c.flops, "params": c.params,
        "weight_bytes": c.weight_bytes, "input_bytes": c.input_bytes, "output_bytes": c.output_bytes,
        "traffic_bytes": c.traffic_bytes, "arithmetic_intensity": c.arithmetic_intensity, "known": c.known,
    } for c in analysis.layers]
    first_input = next(iter(analysis.input_shapes.values()), None)
    if args.format == "json":
        print(json.dumps({"model": analysis.model, "input_shape": first_input, "inputs": analysis.input_shapes,
                          "dtype": analysis.dtype, "layers": rows, "total": analysis.totals()}))
        return 0
    table = pd.DataFrame(rows).drop(columns=["output_shapes", "known"])
    table["output_shape"] = table["output_shape"].map(lambda shape: "x".join(map(str, shape or [])))
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
        return 0
    total = analysis.totals()
    print(f"{analysis.model}: input {'x'.join(map(str, first_input or []))}, {args.dtype}, "
          f"{len(rows)} layers")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"total: {total['macs']:,} MACs (Convolution, Deconvolution, InnerProduct), {total['flops']:,} FLOPs, "
          f"{total['params']:,} parameters, {total['weight_bytes']:,} weight bytes")
    return 0


def cmd_delete(args) -> int:
    from importer import store

    with store.connect(args.db) as con:
        names = store.delete_runs(con, args.run_ids, args.user)
    print(f"deleted {len(names)} run{'s' if len(names) != 1 else ''}: {', '.join(names)}")
    return 0


def cmd_db_info(args) -> int:
    from importer import store

    info = store.store_info(args.db)
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    print(f"store: {info['kind']}: {info['store']}")
    if info.get("data_path"):
        print(f"data path: {info['data_path']}")
    if not info["exists"]:
        print("not made yet: the first import or `layerjoule db migrate` makes it")
        return 0
    version, ours = info["schema_version"], info["layerjoule_schema_version"]
    note = "" if version == ours else (" (older: `layerjoule db migrate` upgrades it)" if version < ours
                                       else " (newer: upgrade layerjoule)")
    print(f"schema version: {version}, this layerjoule's: {ours}{note}")
    if "runs" in info:
        duplicates = info["duplicates"]
        print(f"runs: {info['runs']}; duplicate run ids: {duplicates['run_id']}, duplicate sources: "
              f"{duplicates['content_sha256']}")
        for row in info["runs_by_owner"]:
            print(f"  owner {row['owner'] or '-'}, team {row['team'] or '-'}: {row['runs']}")
    if "admins" in info:
        print(f"admins: {', '.join(info['admins']) or 'none yet (`layerjoule db admin add USER` makes the first)'}")
    return 0


def cmd_db_migrate(args) -> int:
    from importer import store

    found, now = store.migrate_store(args.db)
    print(f"schema version {now} (was {found})" if found != now else f"schema version {now}: up to date")
    return 0


def cmd_db_copy(args) -> int:
    from importer import store

    results = store.copy_runs(args.source, args.target, args.run_ids)
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(f"{r['status']:16} {r['run_id']}  {r['name']}")
    return 0


def cmd_db_s3_secret(args) -> int:
    import os

    from importer import store
    from importer.errors import InputError

    # From the environment, as AWS's own tools take them: never on a command line that `ps` and shell history show.
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise InputError("db s3-secret: expected the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    path = store.save_s3_secret(args.name, key_id, secret, region=args.region, endpoint=args.endpoint,
                                path_style=args.path_style, use_ssl=not args.no_ssl, scope=args.scope)
    print(f"saved S3 secret {args.name} in {path}")
    return 0


def cmd_db_admin(args) -> int:
    from importer import store
    from importer.errors import InputError

    if args.action != "list" and not args.users:
        raise InputError(f"db admin {args.action}: expected one or more user names")
    with store.connect(args.db, read_only=args.action == "list") as con:
        if args.action != "list":
            store.set_admin(con, args.users, args.action == "add", args.user)
        print("\n".join(store.admins(con)) or "no admins")
    return 0


def cmd_app(args) -> int:
    from importer import limits, store

    target = store.resolve_db_path(args.db)
    target = target.resolve() if isinstance(target, Path) else target
    with store.connect(target):  # create and migrate the store before the app reads it
        pass
    app_file = Path(__file__).resolve().parent.parent / "app" / "main.py"
    env = dict(os.environ, LAYERJOULE_DB=str(target))
    print(f"layerjoule dashboard on http://localhost:{args.port} (store: {store.describe(target)})", file=sys.stderr)
    command = [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.headless", "true",
               "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none",
               # The upload limit the Upload page states (LAYERJOULE_MAX_UPLOAD_MB, docs/limits.md).
               "--server.maxUploadSize", str(limits.max_upload_mb())]
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
