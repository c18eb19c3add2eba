"""Cost of the runner's Streamline annotations: one layer() + end() pair, with a (fake) gatord and without.

    .venv/bin/python bench/runner_annotations.py [--pairs N] [--layers N]

The fake gatord of tests/test_runner_streamline.py (same abstract socket names and bytes as a real gatord) runs
in a child process, so that its reading does not compete with the client for the interpreter lock; it decodes
everything it received at the end and the script checks the count. Figures are for this machine's Python; on the
board (Python 3.6, Cortex-A57) expect several times more.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from runner.streamline import Annotator  # noqa: E402

LAYER_NAMES = ["conv1", "relu_conv1", "pool1", "fire2/squeeze1x1", "fire2/expand1x1", "fire2/expand3x3",
               "fire2/concat", "fire3/squeeze1x1", "conv10", "prob"]


def fake_gatord(pipe) -> None:
    """Child process: run the fake gatord until told to stop, then report what it decoded."""
    tests = importlib.import_module("test_runner_streamline")
    with tests.FakeGatord() as fake:
        pipe.send((fake.client_names, fake.real_names))
        pipe.recv()  # the client has closed
        _, messages, left = fake.stream(timeout=30)
        pipe.send((len(messages), left))


def time_pairs(annotator: Annotator, pairs: int, layers: list[str]) -> list[int]:
    """ns per layer()+end() pair, each timed on its own."""
    clock = time.perf_counter_ns
    out = []
    for i in range(pairs):
        name = layers[i % len(layers)]
        t0 = clock()
        annotator.layer(name)
        annotator.end()
        out.append(clock() - t0)
    return out


def summary(label: str, ns: list[int]) -> str:
    ns = sorted(ns)
    p99 = ns[min(len(ns) - 1, int(0.99 * len(ns)))]
    return (f"{label:<38} median {statistics.median(ns) / 1e3:7.2f} us   p99 {p99 / 1e3:7.2f} us"
            f"   (per message: median {statistics.median(ns) / 2e3:.2f} us)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50_000, help="layer()+end() pairs timed per case")
    parser.add_argument("--layers", type=int, default=66, help="distinct layer names (cached after first use)")
    args = parser.parse_args()
    layers = [f"{LAYER_NAMES[i % len(LAYER_NAMES)]}_{i}" for i in range(args.layers)]

    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=fake_gatord, args=(child_end,), daemon=True)
    child.start()
    names, real = parent_end.recv()
    print(f"fake gatord in pid {child.pid} on {'the real' if real else 'unique'} abstract socket names; "
          f"{args.pairs} pairs, {args.layers} layer names; Python {sys.version.split()[0]}")

    connected = Annotator(mode="on", names=names)
    connected.connect()
    connected.name_group(0, "inference")
    connected.name_channel(1, 0, "layers")
    time_pairs(connected, 1000, layers)  # warm the name cache and the socket path
    with_gatord = time_pairs(connected, args.pairs, layers)
    connected.close()
    d = connected.describe()
    parent_end.send("closed")
    decoded, left = parent_end.recv()
    child.join(10)
    assert d["send_errors"] == 0 and decoded == d["messages_sent"] and left == 0, (d, decoded, left)

    nobody = f"layerjoule-bench-nobody-{time.monotonic_ns()}"
    disabled = Annotator(mode="auto", connect_timeout_s=0.0, names=(nobody + "-parent", nobody))
    disabled.connect()
    without = time_pairs(disabled, args.pairs, layers)
    off = time_pairs(Annotator(mode="off"), args.pairs, layers)

    print(summary("with gatord (ANNOTATE 5, sent)", with_gatord))
    print(summary("no gatord (auto mode, disabled)", without))
    print(summary("mode off", off))
    print(f"gatord side: {decoded} messages decoded, {d['bytes_sent']} bytes; clock offset "
          f"monotonic_raw - monotonic = {d['clock_offset']['offset_ns']} ns "
          f"(spread {d['clock_offset']['spread_ns']} ns)")


if __name__ == "__main__":
    main()
