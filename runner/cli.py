"""Command line of the runner: ``python3 -m runner --engine synthetic --model NET.prototxt --out DIR``.

Runs one measurement and writes one run bundle (docs/bundle-format.md). Prints one line naming the bundle.
Errors are one line on stderr and exit status 2.
"""

import argparse
import collections
import os
import sys

from runner import bundle, prototxt
from runner.board import describe_board, describe_host
from runner.engine import run_measurement
from runner.simulate import SimulatedINA3221
from runner.synthetic import SyntheticEngine

DEFAULT_ITERATIONS = {"network": 200, "layer-loop": 5}


class RunnerError(Exception):
    """A problem the user can fix (bad option, missing file): reported in one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"runner: error: {message} (see --help)\n")
        sys.exit(2)


def build_parser():
    p = _Parser(
        prog="python3 -m runner",
        description="Run one per-layer measurement of a Caffe network and write a run bundle "
                    "(docs/bundle-format.md).",
    )
    p.add_argument("--engine", required=True, choices=["synthetic"],
                   help="synthetic: no network is run; layer timings are made up from a per-type model "
                        "(development, tests, sample traces). Engines that run the network (pycaffe, "
                        "OpenCV dnn) come later.")
    p.add_argument("--model", required=True, metavar="PROTOTXT", help="network definition (.prototxt)")
    p.add_argument("--network", help="network name for the manifest (default: the prototxt file's stem)")
    p.add_argument("--mode", choices=["network", "layer-loop"], default="network",
                   help="network: every layer once per iteration; layer-loop: each layer repeated back to "
                        "back until it lasts --min-layer-ms (default: network)")
    p.add_argument("--iterations", type=int,
                   help="inference iterations (default: {} in network mode, {} in layer-loop mode)".format(
                       DEFAULT_ITERATIONS["network"], DEFAULT_ITERATIONS["layer-loop"]))
    p.add_argument("--warmup", type=int, default=10,
                   help="warm-up iterations, each layer once, before inference (default: 10)")
    p.add_argument("--batch", type=int,
                   help="batch size (default: the prototxt's first input dimension, else 1)")
    p.add_argument("--rails", choices=["simulate", "none"], default="simulate",
                   help="power source: simulate (a simulated INA3221, labelled simulated) or none "
                        "(timing only) (default: simulate)")
    p.add_argument("--update-interval-ms", type=float, default=54.0,
                   help="simulated sensor: one new value every this many ms (default: 54, the TX1's INA3221)")
    p.add_argument("--noise-mw", type=float, default=10.0,
                   help="simulated sensor: Gaussian noise sigma in mW, 0 for exact values (default: 10)")
    p.add_argument("--idle-s", type=float, default=1.0,
                   help="idle baseline before and after the run, seconds (default: 1.0)")
    p.add_argument("--min-layer-ms", type=float,
                   help="layer-loop mode: repeat each layer until it lasts at least this long "
                        "(default: 10 x --update-interval-ms)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the synthetic engine and the simulation (default: 0)")
    p.add_argument("--gzip", action="store_true", help="gzip the CSV tables (events.csv.gz, ...)")
    p.add_argument("--zip", action="store_true", help="write the bundle as one .zip file")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="the bundle to write: a new path, or an existing directory to create "
                        "<run_id>[.zip] inside")
    return p


def _check(args):
    if args.iterations is not None and args.iterations < 1:
        raise RunnerError("--iterations must be at least 1")
    if args.warmup < 0:
        raise RunnerError("--warmup must be 0 or more")
    if args.batch is not None and args.batch < 1:
        raise RunnerError("--batch must be at least 1")
    if not args.update_interval_ms > 0:
        raise RunnerError("--update-interval-ms must be more than 0")
    if args.noise_mw < 0:
        raise RunnerError("--noise-mw must be 0 or more")
    if args.idle_s < 0:
        raise RunnerError("--idle-s must be 0 or more")
    if args.min_layer_ms is not None and not args.min_layer_ms > 0:
        raise RunnerError("--min-layer-ms must be more than 0")


def _bundle_path(out, run_id, as_zip):
    """--out names the bundle itself, or an existing directory to put <run_id> in."""
    out = os.path.abspath(out)
    if os.path.isdir(out):
        if os.path.exists(os.path.join(out, bundle.MANIFEST)):
            raise RunnerError(f"{out} is already a bundle: choose a new --out")
        out = os.path.join(out, run_id)
    if as_zip and not out.endswith(".zip"):
        out += ".zip"
    if os.path.lexists(out):
        raise RunnerError(f"{out} already exists: choose a new --out")
    return out


def run(args, argv):
    _check(args)
    if not os.path.isfile(args.model):
        raise RunnerError(f"model prototxt not found: {args.model}")
    try:
        net = prototxt.read_file(args.model)
    except prototxt.PrototxtError as e:
        raise RunnerError(f"cannot read {args.model}: {e}") from None
    if not net.layers:
        raise RunnerError(f"no layers found in {args.model}")

    network = args.network or os.path.splitext(os.path.basename(args.model))[0]
    iterations = args.iterations if args.iterations is not None else DEFAULT_ITERATIONS[args.mode]
    min_layer_ms = args.min_layer_ms if args.min_layer_ms is not None else 10.0 * args.update_interval_ms
    input_shape = list(net.input_shape) if net.input_shape else None
    batch = args.batch if args.batch is not None else (input_shape[0] if input_shape else 1)
    if input_shape:
        input_shape[0] = batch  # the shape that runs: the engine reshapes the input to the batch

    clock = bundle.clock_pair()
    run_id = bundle.make_run_id(network, clock["realtime_utc_ns"])
    path = _bundle_path(args.out, run_id, args.zip)

    engine = SyntheticEngine(net.layers, seed=args.seed, batch=batch)
    power = None
    if args.rails == "simulate":
        power = SimulatedINA3221(update_interval_ms=args.update_interval_ms, noise_mw=args.noise_mw,
                                 seed=args.seed)

    if power is not None:
        power.start()
    try:
        events = run_measurement(engine, mode=args.mode, iterations=iterations, warmup=args.warmup,
                                 idle_s=args.idle_s, min_layer_ns=int(round(min_layer_ms * 1e6)))
    finally:
        if power is not None:
            power.stop()

    simulated = bool(engine.simulated or (power is not None and power.simulated))
    notes = []
    if engine.simulated:
        notes.append("synthetic engine: no network was executed; layer timings are made up")
    if power is not None and power.simulated:
        notes.append("power is simulated (simulated INA3221), not measured")

    options = collections.OrderedDict([
        ("engine", args.engine), ("model", args.model), ("network", network), ("mode", args.mode),
        ("iterations", iterations), ("warmup", args.warmup), ("batch", batch), ("rails", args.rails),
        ("update_interval_ms", args.update_interval_ms), ("noise_mw", args.noise_mw), ("idle_s", args.idle_s),
        ("min_layer_ms", min_layer_ms), ("seed", args.seed), ("gzip", args.gzip), ("zip", args.zip),
        ("out", args.out),
    ])
    manifest = collections.OrderedDict([
        ("format", bundle.FORMAT),
        ("format_version", bundle.FORMAT_VERSION),
        ("run_id", run_id),
        ("created_utc", clock["realtime_utc"]),
        ("simulated", simulated),
        ("board", describe_board()),
        ("host", describe_host()),
        ("engine", engine.info()),
        ("model", collections.OrderedDict([
            ("network", network),
            ("prototxt", collections.OrderedDict([("file", bundle.MODEL)])),
            ("weights", None),
            ("source", os.path.basename(args.model)),
        ])),
        ("input_shape", input_shape),
        ("batch", batch),
        ("iterations", iterations),
        ("warmup", args.warmup),
        ("mode", args.mode),
        ("power_sources", [power.describe()] if power is not None else []),
        ("clock", clock),
        ("options", options),
        ("argv", list(argv)),
        ("notes", notes),
    ])

    with bundle.BundleWriter(path, compress=args.gzip, as_zip=args.zip) as writer:
        writer.add_model(args.model)
        writer.write_events(events)
        if power is not None:
            writer.write_rails(power.samples(events))
            if power.simulated:
                writer.write_ground_truth(power.ground_truth(events))
        writer.write_manifest(manifest)
    return writer.final_path, len(net.layers), iterations, simulated


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        path, n_layers, iterations, simulated = run(args, argv)
    except (RunnerError, bundle.BundleError) as e:
        sys.stderr.write(f"runner: error: {e}\n")
        return 2
    except OSError as e:
        sys.stderr.write(f"runner: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("runner: interrupted, no bundle written\n")
        return 130
    print("wrote bundle {} ({} layers, {} iterations{})".format(
        path, n_layers, iterations, ", SIMULATED" if simulated else ""))
    return 0
