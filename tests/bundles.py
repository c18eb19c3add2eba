"""Hand-made run bundles for importer tests: small, exact, and easy to break on purpose.

The runner's own writer is tested in test_runner_bundle.py; these are written independently from the format
document so that the reader is checked against the document, not against the writer.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

PROTOTXT = b'name: "tiny"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n' \
    b'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" ' \
    b'convolution_param { num_output: 4 kernel_size: 3 } }\n' \
    b'layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }\n'

MS = 1_000_000  # ns


def manifest(run_id: str = "run-tiny-1", update_interval_ms: float | None = 10.0, simulated: bool = True,
             rails: tuple[str, ...] = ("VDD_IN",), iterations: int = 3, mode: str = "network") -> dict:
    return {
        "format": "layerjoule-run-bundle",
        "format_version": "1.0",
        "run_id": run_id,
        "created_utc": "2026-12-01T10:00:00Z",
        "simulated": simulated,
        "board": {"model": "Test Board"},
        "host": {"hostname": "testhost"},
        "engine": {"name": "synthetic", "version": "1", "device": "none"},
        "model": {"network": "tiny", "prototxt": {"file": "model.prototxt",
                                                  "sha256": hashlib.sha256(PROTOTXT).hexdigest()},
                  "weights": None},
        "input_shape": [1, 3, 8, 8],
        "batch": 1,
        "iterations": iterations,
        "warmup": 0,
        "mode": mode,
        "power_sources": [] if not rails else [{
            "name": "test", "kind": "simulate", "simulated": simulated, "update_interval_ms": update_interval_ms,
            "rails": [{"name": r, "unit": "mW", "total": i == 0} for i, r in enumerate(rails)],
        }],
        "clock": {"monotonic_ns": 0, "realtime_utc_ns": 1_796_000_000_000_000_000,
                  "realtime_utc": "2026-12-01T10:00:00Z"},
    }


def tiny_events(iterations: int = 3) -> list[str]:
    """idle 0-100 ms, inference: each iteration = conv1 40 ms then relu1 20 ms, back to back; idle again."""
    rows = ["kind,phase,iteration,layer_index,layer_name,layer_type,repeats,t_start_ns,t_end_ns",
            f"phase,idle,,,,,,0,{100 * MS}"]
    t = 100 * MS
    start = t
    for i in range(iterations):
        rows.append(f"layer,inference,{i},0,conv1,Convolution,1,{t},{t + 40 * MS}")
        rows.append(f"layer,inference,{i},1,relu1,ReLU,1,{t + 40 * MS},{t + 60 * MS}")
        t += 60 * MS
    rows.insert(2, f"phase,inference,,,,,,{start},{t}")
    rows.append(f"phase,idle,,,,,,{t},{t + 100 * MS}")
    return rows


def tiny_rails(iterations: int = 3, interval_ms: int = 10) -> list[str]:
    """VDD_IN: 1000 mW idle, 3000 mW in conv1, 2000 mW in relu1; one sample every 10 ms (window average)."""
    end_ms = 100 + 60 * iterations + 100
    rows = ["t_ns,rail,power_mw,voltage_mv,current_ma"]
    for t_ms in range(interval_ms, end_ms + 1, interval_ms):
        rows.append(f"{t_ms * MS},VDD_IN,{tiny_power_mw(t_ms - interval_ms / 2)},5000,")
    return rows


def tiny_power_mw(t_ms: float, iterations: int = 3) -> float:
    if t_ms < 100 or t_ms >= 100 + 60 * iterations:
        return 1000.0
    return 3000.0 if (t_ms - 100) % 60 < 40 else 2000.0


def write_bundle(folder: Path, manifest_data: dict | None = None, events: list[str] | None = None,
                 rails: list[str] | None = None, extra: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest_data = copy.deepcopy(manifest_data or manifest())
    (folder / "manifest.json").write_text(json.dumps(manifest_data, indent=1))
    (folder / "model.prototxt").write_bytes(PROTOTXT)
    (folder / "events.csv").write_text("\n".join(events or tiny_events()) + "\n")
    if rails is not False:
        (folder / "rails.csv").write_text("\n".join(rails or tiny_rails()) + "\n")
    for name, data in (extra or {}).items():
        (folder / name).write_bytes(data)
    return folder


def lenet_caffemodel() -> bytes:
    """A caffemodel with LeNet's blob shapes (sample_traces/models/legacy_v1_lenet.prototxt), values left empty."""
    from importer.model import caffe_pb2

    model = caffe_pb2.NetParameter()
    for name, shapes in {"conv1": [[20, 1, 5, 5], [20]], "conv2": [[50, 20, 5, 5], [50]],
                         "ip1": [[500, 800], [500]], "ip2": [[10, 500], [10]]}.items():
        layer = model.layer.add(name=name)
        for shape in shapes:
            layer.blobs.add().shape.dim.extend(shape)
    return model.SerializeToString()
