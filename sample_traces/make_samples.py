"""Remakes sample_traces/: real local runs of the runner (opencv engine, simulated rails) and, for the SqueezeNet
v1.1 network run, a Streamline capture, Streamline reports and a tegrastats log made to match it by the project's
TEST-ONLY writers (synthetic: no gatord, no Streamline, no tegrastats produced them).

    .venv/bin/python sample_traces/make_samples.py            # about 8 minutes on 2 cores

It deletes and rewrites the run folders and sample_traces/extras/. See sample_traces/README.md.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from streamline_writer import CounterSpec, write_capture  # noqa: E402  (the test-only capture writer)

from importer.readers.bundle import read_bundle  # noqa: E402

# network -> (network-mode iterations, layer-loop iterations); fewer for the deep nets keeps the folder small.
RUNS = {
    "squeezenet_v1.1": (200, 2),
    "squeezenet_v1.0": (200, 1),
    "alexnet": (200, 2),
    "googlenet": (60, 1),
    "resnet50": (40, 1),
}
MATCHED = "squeezenet_v1.1-network"  # the run the capture, reports and tegrastats log belong to
RAW_MINUS_MONOTONIC_NS = 3_217_455_000  # a made-up CLOCK_MONOTONIC_RAW - CLOCK_MONOTONIC offset for the capture


def runner(out: Path, model: str, *args: str) -> None:
    command = [sys.executable, "-m", "runner", "--engine", "opencv", "--model",
               f"sample_traces/models/{model}.prototxt", "--rails", "simulate", "--streamline", "off", "--gzip",
               "--seed", "7", "--out", str(out), *args]
    print("  " + " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def make_runs() -> None:
    for folder in HERE.iterdir():
        if folder.is_dir() and (folder / "manifest.json").exists():
            shutil.rmtree(folder)
    for model, (iterations, loop_iterations) in RUNS.items():
        runner(HERE / f"{model}-network", model, "--iterations", str(iterations), "--gap-ms", "3")
        runner(HERE / f"{model}-layerloop", model, "--mode", "layer-loop", "--iterations", str(loop_iterations),
               "--warmup", "1")


def make_extras() -> None:
    """A capture, reports and a tegrastats log of the MATCHED run, derived from its bundle."""
    extras = HERE / "extras"
    shutil.rmtree(extras, ignore_errors=True)
    extras.mkdir()
    bundle = read_bundle(HERE / MATCHED)
    events = bundle.layer_events
    phases = bundle.phases
    layers = bundle.layers.set_index("layer_index")
    start_mono = int(phases["t_start_ns"].min())
    end_mono = int(phases["t_end_ns"].max())
    capture_start_mono = start_mono - 50_000_000  # the capture starts 50 ms before the run
    raw_zero = capture_start_mono + RAW_MINUS_MONOTONIC_NS
    to_raw = RAW_MINUS_MONOTONIC_NS
    inference_start = int(phases.loc[phases["phase"] == "inference", "t_start_ns"].iloc[0])

    # Annotations as the runner sends them: a channel string per layer, ended by an empty one.
    annotations = []
    for row in events.itertuples(index=False):
        annotations.append((row.t_start_ns + to_raw, 4242, 1, layers.loc[row.layer_index, "name"]))
        annotations.append((row.t_end_ns + to_raw, 4242, 1, ""))
    markers = [(int(p.t_start_ns) + to_raw, p.phase) for p in phases.itertuples(index=False)]
    markers.append((inference_start + to_raw, f"layerjoule-sync monotonic_ns={inference_start}"))
    markers.sort()
    # A made-up bus access counter: accesses per 1 ms sample, higher while convolutions run (synthetic).
    sample_t = np.arange(capture_start_mono, end_mono, 1_000_000)
    conv = events.merge(bundle.layers, on="layer_index")
    busy = np.zeros(len(sample_t))
    for row in conv.itertuples(index=False):
        weight = 3.0 if row.type == "Convolution" else 1.0
        overlap = np.clip(np.minimum(sample_t, row.t_end_ns) - np.maximum(sample_t - 1_000_000, row.t_start_ns),
                          0, None)
        busy += weight * overlap / 1_000_000
    accesses = (20_000 + 400_000 * busy).astype(np.int64)
    counter = CounterSpec(type="ARMv8_Cortex_A57_cnt2", title="Cortex-A57", name="Bus access", units="",
                          event=0x19, values=[(int(t - capture_start_mono), 0, int(a))
                                              for t, a in zip(sample_t, accesses, strict=True)])
    write_capture(extras / "squeezenet_v1.1-network.apc", monotonic_delta_ns=raw_zero,
                  realtime_ns=int(bundle.manifest["clock"]["realtime_utc_ns"]
                                  + capture_start_mono - bundle.manifest["clock"]["monotonic_ns"]),
                  annotations=annotations, markers=markers, counters=[counter],
                  group_names={0: "layerjoule"}, channel_names={1: (0, "layers")},
                  summary_attributes={"layerjoule_synthetic": "true"}, zip=True, perf_frames=False)
    shutil.rmtree(extras / "squeezenet_v1.1-network.apc", ignore_errors=True)  # the zip is what ships

    # Streamline reports of the same capture: the Log view (layers and markers) and a counter timeline.
    def seconds(t_mono):
        return (np.asarray(t_mono) - capture_start_mono) / 1e9

    log = pd.DataFrame({
        "Time": seconds(events["t_start_ns"]), "Duration": (events["t_end_ns"] - events["t_start_ns"]) / 1e9,
        "Message": layers.loc[events["layer_index"], "name"].to_numpy(), "Group": "layerjoule",
        "Channel": "1: layers", "Process/Thread": "python3 [4242] / python3 [4242]"})
    marks = pd.DataFrame({"Time": seconds([t - to_raw for t, _ in markers]), "Duration": np.nan,
                          "Message": [text for _, text in markers], "Group": "", "Channel": "",
                          "Process/Thread": "python3 [4242] / python3 [4242]"})
    report = pd.concat([log, marks]).sort_values("Time")
    report.to_csv(extras / "squeezenet_v1.1-network.streamline-log.csv", index=False, float_format="%.9f")
    # A timeline row every 10 ms counts the accesses of those 10 ms.
    whole = len(accesses) // 10 * 10
    timeline = pd.DataFrame({"Time [s]": seconds(sample_t[9:whole:10]),
                             "Bus access": accesses[:whole].reshape(-1, 10).sum(axis=1)})
    timeline.to_csv(extras / "squeezenet_v1.1-network.streamline-timeline.csv", index=False, float_format="%.6f")

    # tegrastats on an Orin-style JetPack 5 line format, one line per second, VDD_IN from the simulated rail.
    rails = bundle.samples[bundle.samples["rail"] == "VDD_IN"]
    clock = bundle.manifest["clock"]
    to_utc = int(clock["realtime_utc_ns"]) - int(clock["monotonic_ns"])
    first_s = (start_mono + to_utc) // 10**9 + 1
    lines = []
    for second in range(first_s, (end_mono + to_utc) // 10**9 + 1):
        t_mono = second * 10**9 - to_utc
        window = rails[(rails["t_ns"] > t_mono - 10**9) & (rails["t_ns"] <= t_mono)]
        if window.empty:
            continue
        now = int(window["power_mw"].iloc[-1])
        average = int(window["power_mw"].mean())
        stamp = datetime.datetime.fromtimestamp(second, tz=datetime.UTC).strftime("%m-%d-%Y %H:%M:%S")
        lines.append(f"{stamp} RAM 2310/7772MB (lfb 1x4MB) CPU [12%@1479,8%@1479,5%@1479,3%@1479] "
                     f"EMC_FREQ 9%@1600 GR3D_FREQ 61%@921 VDD_IN {now}mW/{average}mW")
    (extras / "squeezenet_v1.1-network.tegrastats.log").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if "--extras-only" not in sys.argv:  # --extras-only: keep the runs, remake extras/ from them
        make_runs()
    make_extras()
    print("done: sample_traces/ remade")
