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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="layerjoule", description="Per-layer energy profiling of ConvNet inference.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", help="store: a DuckDB file (default: $LAYERJOULE_DB, else "
                                       "~/.local/share/layerjoule/layerjoule.duckdb)")
        sub.set_defaults(handler=handler)
        return sub

    sub = command("import", cmd_import, "Import run bundles into the store (all or nothing).")
    sub.add_argument("sources", nargs="+", metavar="SOURCE", help="run bundle folder or zip")
    sub.add_argument("--name", help="name of the run (default: the bundle's folder or file name)")
    sub.add_argument("--owner", help="who made the run (default: the current user)")
    sub.add_argument("--tag", action="append", default=[], help="a tag; repeat for several")
    sub.add_argument("--json", action="store_true", help="print a JSON list of {run_id, name, status}")

    sub = command("runs", cmd_runs, "List the runs in the store.")
    sub.add_argument("--json", action="store_true", help="print a JSON list of runs")

    sub = command("report", cmd_report, "Per-layer time and energy statistics of one run.")
    sub.add_argument("run_id", metavar="RUN_ID")
    sub.add_argument("--format", choices=["table", "csv", "json"], default="table")

    sub = command("app", cmd_app, "Start the dashboard (Streamlit).")
    sub.add_argument("--port", type=int, default=8501)
    return parser


def cmd_import(args) -> int:
    from importer.ingest import import_sources

    interactive = sys.stderr.isatty()

    def progress(message: str) -> None:
        # Progress goes to a terminal only, overwriting itself, so that logs and pipes get just the results.
        if interactive:
            print(f"\r\033[K  {message}", end="", file=sys.stderr, flush=True)

    try:
        results = import_sources(args.sources, db=args.db, name=args.name, owner=args.owner, tags=args.tag,
                                 progress=progress)
    finally:
        if interactive:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        for r in results:
            print(f"{r.status:16} {r.run_id}  {r.name}")
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


def cmd_app(args) -> int:
    from importer import store

    db_path = store.resolve_db_path(args.db).resolve()
    with store.connect(db_path):  # create and migrate the store before the app reads it
        pass
    app_file = Path(__file__).resolve().parent.parent / "app" / "main.py"
    env = dict(os.environ, LAYERJOULE_DB=str(db_path))
    print(f"layerjoule dashboard on http://localhost:{args.port} (store: {db_path})", file=sys.stderr)
    command = [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.headless", "true",
               "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
