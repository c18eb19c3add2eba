"""Command line of the runner: ``python3 -m runner --engine opencv --model NET.prototxt --out DIR``.

Runs one measurement and writes one run bundle (docs/bundle-format.md). Prints one line naming the bundle and a
progress line while it runs. Errors are one line on stderr and exit status 2.
"""

import argparse
import collections
import importlib
import os
import sys

import numpy as np

from runner import bundle, prototxt
from runner.board import describe_board, describe_host
from runner.engine import EngineError, bracketing_overhead, run_measurement, time_whole_network

DEFAULT_ITERATIONS = {"network": 200, "layer-loop": 5}
ENGINES = ("auto", "caffe", "opencv", "synthetic")


class RunnerError(Exception):
    """A problem the user can fix (bad option, missing file): reported in one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"runner: error: {message} (see --help)\n")
        sys.exit(2)


def _cpus(text):
    try:
        cpus = sorted({int(part) for part in text.split(",") if part != ""})
    except ValueError:
        cpus = []
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CPU list; expected numbers like 0,1")
    return cpus


def build_parser():
    p = _Parser(
        prog="python3 -m runner",
        description="Run one per-layer measurement of a Caffe network and write a run bundle "
                    "(docs/bundle-format.md).",
    )
    p.add_argument("--engine", required=True, choices=ENGINES,
                   help="caffe: pycaffe runs each layer (Net.forward(start=L, end=L)); opencv: OpenCV's dnn "
                        "module (4.x) runs each layer as its own net; auto: caffe if importable, else opencv; "
                        "synthetic: no network is run, layer timings are made up (development, tests)")
    p.add_argument("--model", required=True, metavar="PROTOTXT", help="network definition (.prototxt)")
    p.add_argument("--weights", metavar="CAFFEMODEL",
                   help="trained weights; without them weights are generated (seeded) with the right shapes")
    p.add_argument("--input", metavar="FILE",
                   help="input data: an image (resized to the input shape; needs OpenCV) or a .npy array; "
                        "default: random (seeded)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                   help="caffe engine: CPU or GPU mode; on the GPU each layer is followed by "
                        "cudaDeviceSynchronize (default: cpu)")
    p.add_argument("--gpu-id", type=int, default=0, help="caffe engine: GPU to use (default: 0)")
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
    p.add_argument("--rails", action="append", metavar="SOURCE",
                   help="power source: auto, ina3221, hwmon, rapl, nvml, replay:FILE, simulate or none; "
                        "repeat for several (default: auto, which picks the first real source found; "
                        "simulate with the synthetic engine)")
    p.add_argument("--update-interval-ms", type=float,
                   help="sensor update interval (default: the source's own; 54 for the TX1's INA3221 and "
                        "the simulated one)")
    p.add_argument("--poll-ms", type=float, help="how often the sampler reads the sensors (default: the update "
                                                 "interval)")
    p.add_argument("--noise-mw", type=float, default=10.0,
                   help="simulated sensor: Gaussian noise sigma in mW, 0 for exact values (default: 10)")
    p.add_argument("--streamline", choices=["auto", "on", "off"], default="auto",
                   help="ARM Streamline annotations through gatord: auto uses gatord when it listens, on "
                        "requires it, off sends nothing (default: auto)")
    p.add_argument("--annotate-version", type=int, choices=[4, 5], default=5,
                   help="gator annotate protocol version: 5 for gator 7.9+, 4 for 5.24-7.8 (default: 5)")
    p.add_argument("--idle-s", type=float, default=1.0,
                   help="idle baseline before and after the run, seconds (default: 1.0)")
    p.add_argument("--min-layer-ms", type=float,
                   help="layer-loop mode: repeat each layer until it lasts at least this long "
                        "(default: 10 sensor update intervals, 540 ms at 54 ms)")
    p.add_argument("--gap-ms", type=float, default=0.0,
                   help="network mode: insert random idle gaps (exponential, this mean) before half the "
                        "layers, so that statistical estimators can separate layers (default: 0, none)")
    p.add_argument("--whole-network-iterations", type=int,
                   help="plain whole-network forwards timed after inference, for the bracketing overhead "
                        "(default: min(iterations, 50))")
    p.add_argument("--affinity", type=_cpus, metavar="CPUS", help="CPUs for the inference thread, e.g. 1,2")
    p.add_argument("--sampler-affinity", type=_cpus, metavar="CPUS", help="CPUs for the power sampler threads")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of generated weights, random input, gaps and simulations (default: 0)")
    p.add_argument("--gzip", action="store_true", help="gzip the CSV tables (events.csv.gz, ...)")
    p.add_argument("--zip", action="store_true", help="write the bundle as one .zip file")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="the bundle to write: a new path, or an existing directory to create "
                        "<run_id>[.zip] inside")
    return p


def _check(args):
    positive = [("--iterations", args.iterations), ("--batch", args.batch),
                ("--whole-network-iterations", None if args.whole_network_iterations == 0
                 else args.whole_network_iterations)]
    for name, value in positive:
        if value is not None and value < 1:
            raise RunnerError(f"{name} must be at least 1")
    if args.warmup < 0:
        raise RunnerError("--warmup must be 0 or more")
    for name, value in (("--update-interval-ms", args.update_interval_ms), ("--poll-ms", args.poll_ms),
                        ("--min-layer-ms", args.min_layer_ms)):
        if value is not None and not value > 0:
            raise RunnerError(f"{name} must be more than 0")
    for name, value in (("--noise-mw", args.noise_mw), ("--idle-s", args.idle_s), ("--gap-ms", args.gap_ms)):
        if value < 0:
            raise RunnerError(f"{name} must be 0 or more")
    if args.device == "gpu" and args.engine not in ("caffe", "auto"):
        raise RunnerError("--device gpu needs the caffe engine")


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


def _importable(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def choose_engine(requested):
    """auto: pycaffe when importable, else OpenCV 4.x; says which in the returned note."""
    if requested != "auto":
        return requested, None
    if _importable("caffe") is not None:
        return "caffe", "auto: using pycaffe"
    cv2 = _importable("cv2")
    if cv2 is not None and cv2.__version__.split(".")[0] == "4":
        return "opencv", f"auto: pycaffe not found, using OpenCV {cv2.__version__} dnn"
    raise RunnerError("auto: neither pycaffe nor OpenCV 4.x (cv2) can be imported; install one or use "
                      "--engine synthetic")


def load_input(path, shape):
    """The network input from a .npy array or an image file, as float32 of the input shape."""
    if not os.path.isfile(path):
        raise RunnerError(f"input file not found: {path}")
    if path.endswith(".npy"):
        data = np.load(path).astype(np.float32)
        if shape and data.shape != tuple(shape):
            if data.shape == tuple(shape[1:]):
                data = np.broadcast_to(data, shape).copy()
            else:
                raise RunnerError(f"{path} holds an array of shape {data.shape}; expected {shape}")
        return data
    cv2 = _importable("cv2")
    if cv2 is None:
        raise RunnerError("reading an image needs OpenCV (cv2); give a .npy array instead")
    image = cv2.imread(path)
    if image is None:
        raise RunnerError(f"{path} is not an image OpenCV can read")
    if not shape or len(shape) != 4:
        raise RunnerError("an image input needs a 4-D network input (N, C, H, W)")
    image = cv2.resize(image, (shape[3], shape[2])).astype(np.float32)
    if shape[1] == 1:
        image = image.mean(axis=2, keepdims=True)
    chw = image.transpose(2, 0, 1)[: shape[1]]
    return np.broadcast_to(chw, shape).copy()


def make_engine(name, args, net, batch, input_array):
    if name == "synthetic":
        from runner.synthetic import SyntheticEngine
        return SyntheticEngine(net.layers, seed=args.seed, batch=batch)
    if name == "opencv":
        from runner.engines.opencv import OpenCVEngine
        return OpenCVEngine(args.model, weights_path=args.weights, batch=batch, input_array=input_array,
                            seed=args.seed, device=args.device)
    from runner.engines.caffe import CaffeEngine
    if _importable("caffe") is None:
        raise RunnerError("the caffe engine needs pycaffe (import caffe failed): build Caffe with its Python "
                          "wrapper and put it on PYTHONPATH, or use --engine opencv")
    return CaffeEngine(args.model, weights_path=args.weights, batch=batch, input_array=input_array,
                       seed=args.seed, device=args.device, gpu_id=args.gpu_id)


class Progress:
    """One line on stderr while inference runs: rewritten in place on a terminal, every 10% otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.shown_tenth = -1

    def __call__(self, done, total):
        if self.interactive:
            self.stream.write(f"\rinference: {done}/{total} iterations")
            if done == total:
                self.stream.write("\n")
            self.stream.flush()
            return
        tenth = done * 10 // total
        if tenth != self.shown_tenth:
            self.shown_tenth = tenth
            self.stream.write(f"inference: {done}/{total} iterations\n")


def say(message):
    sys.stderr.write(f"runner: {message}\n")


def run(args, argv):
    _check(args)
    if not os.path.isfile(args.model):
        raise RunnerError(f"model prototxt not found: {args.model}")
    if args.weights and not os.path.isfile(args.weights):
        raise RunnerError(f"weights not found: {args.weights}")
    try:
        net = prototxt.read_file(args.model)
    except prototxt.PrototxtError as e:
        raise RunnerError(f"cannot read {args.model}: {e}") from None
    if not net.layers:
        raise RunnerError(f"no layers found in {args.model}")

    from runner import power
    from runner.streamline import AnnotationError, Annotator

    engine_name, engine_note = choose_engine(args.engine)
    notes = [engine_note] if engine_note else []
    network = args.network or os.path.splitext(os.path.basename(args.model))[0]
    iterations = args.iterations if args.iterations is not None else DEFAULT_ITERATIONS[args.mode]
    input_shape = list(net.input_shape) if net.input_shape else None
    batch = args.batch if args.batch is not None else (input_shape[0] if input_shape else 1)
    if input_shape:
        input_shape[0] = batch  # the shape that runs: the engine reshapes the input to the batch
    input_array = load_input(args.input, input_shape) if args.input else None

    clock = bundle.clock_pair()
    run_id = bundle.make_run_id(network, clock["realtime_utc_ns"])
    path = _bundle_path(args.out, run_id, args.zip)

    engine = make_engine(engine_name, args, net, batch, input_array)  # before the sensors: fails fast
    rails = args.rails or (["simulate"] if engine_name == "synthetic" else ["auto"])
    if engine_name == "synthetic" and set(power.split_specs(rails)) & (set(power.REAL_KINDS) | {"auto"}):
        raise RunnerError("the synthetic engine runs on a virtual clock that real sensors cannot follow; use "
                          "--rails simulate, replay:FILE or none")
    try:
        sources, power_notes = power.open_sources(
            rails, update_interval_ms=args.update_interval_ms, poll_ms=args.poll_ms,
            noise_mw=args.noise_mw, seed=args.seed, sampler_cpus=args.sampler_affinity)
    except power.PowerSourceError as e:
        raise RunnerError(str(e)) from None
    notes += power_notes
    for note in power_notes:
        say(note)
    intervals = [s.describe().get("update_interval_ms") for s in sources]
    intervals = [i for i in intervals if i]
    update_interval_ms = max(intervals) if intervals else 54.0
    min_layer_ms = args.min_layer_ms if args.min_layer_ms is not None else 10.0 * update_interval_ms

    annotator = Annotator(mode=args.streamline, version=args.annotate_version)
    try:
        connected = annotator.connect()
    except AnnotationError as e:
        raise RunnerError(str(e)) from None
    if connected:
        annotator.name_group(0, "layerjoule")
        annotator.name_channel(1, 0, "layers")
    elif args.streamline != "off":
        note = annotator.describe().get("note") or "no gatord listening: no Streamline annotations"
        say(note)
        notes.append(note)

    if args.affinity:
        os.sched_setaffinity(0, args.affinity)  # the calling thread: the one that runs the layers
    power.start_all(sources)
    try:
        events = run_measurement(
            engine, mode=args.mode, iterations=iterations, warmup=args.warmup, idle_s=args.idle_s,
            min_layer_ns=int(round(min_layer_ms * 1e6)), annotator=annotator, gap_mean_ms=args.gap_ms,
            seed=args.seed, progress=Progress())
        whole_iterations = args.whole_network_iterations
        whole_iterations = min(iterations, 50) if whole_iterations is None else whole_iterations
        annotator.marker("whole-network forwards")
        whole_network = time_whole_network(engine, whole_iterations)
    finally:
        power.stop_all(sources)
        annotator.close()
    for line in power.sampler_summary(sources):
        say(line)
    overhead = bracketing_overhead(events, whole_network) if args.mode == "network" else None
    if overhead is not None:
        say("per-layer bracketing: {:.3f} ms per inference against {:.3f} ms for a plain forward ({:+.1f}%)".format(
            overhead["per_layer_sum_ms_mean"], overhead["whole_network_ms_mean"], overhead["overhead_pct"]))

    simulated = bool(engine.simulated or any(s.simulated for s in sources))
    if engine.simulated:
        notes.append("synthetic engine: no network was executed; layer timings are made up")
    for source in sources:
        if source.simulated:
            notes.append(f"power source {source.name} ({source.kind}) is not measured during this run")

    weights = None
    if args.weights:
        weights = collections.OrderedDict([("file", os.path.basename(args.weights)),
                                           ("sha256", bundle.sha256_file(args.weights)), ("generated", False)])
    elif engine_name != "synthetic":
        weights = collections.OrderedDict([("file", None), ("sha256", None), ("generated", True),
                                           ("seed", args.seed)])
    options = collections.OrderedDict(sorted(vars(args).items()))
    options.update([("iterations", iterations), ("batch", batch),
                    ("min_layer_ms", min_layer_ms), ("rails", rails)])
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
            ("weights", weights),
            ("source", os.path.basename(args.model)),
        ])),
        ("input", collections.OrderedDict([
            ("file", os.path.basename(args.input) if args.input else None),
            ("sha256", bundle.sha256_file(args.input) if args.input else None),
            ("random_seed", None if args.input else args.seed)])),
        ("input_shape", list(getattr(engine, "input_shape", None) or input_shape or []) or None),
        ("batch", batch),
        ("iterations", iterations),
        ("warmup", args.warmup),
        ("mode", args.mode),
        ("inter_layer_gaps", collections.OrderedDict([("mean_ms", args.gap_ms), ("fraction", 0.5)])
         if args.gap_ms > 0 and args.mode == "network" else None),
        ("whole_network", whole_network),
        ("bracketing_overhead", overhead),
        ("power_sources", [source.describe() for source in sources]),
        ("streamline", annotator.describe()),
        ("clock", clock),
        ("options", options),
        ("argv", list(argv)),
        ("notes", notes),
    ])

    with bundle.BundleWriter(path, compress=args.gzip, as_zip=args.zip) as writer:
        writer.add_model(args.model)
        writer.write_events(events)
        samples, truth = power.collect(sources, events)
        if sources:
            writer.write_rails(samples)
        if truth:
            writer.write_ground_truth(truth)
        writer.write_manifest(manifest)
    return writer.final_path, len(engine.layers), iterations, simulated


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        path, n_layers, iterations, simulated = run(args, argv)
    except (RunnerError, EngineError) as e:
        sys.stderr.write(f"runner: error: {e}\n")
        return 2
    except (bundle.BundleError, OSError) as e:
        sys.stderr.write(f"runner: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("runner: interrupted, no bundle written\n")
        return 130
    print("wrote bundle {} ({} layers, {} iterations{})".format(
        path, n_layers, iterations, ", SIMULATED" if simulated else ""))
    return 0
