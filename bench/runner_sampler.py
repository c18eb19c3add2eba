"""What the runner's power sampler costs: its thread's CPU time over a fake TX1 INA3221 sysfs tree.

    .venv/bin/python bench/runner_sampler.py [--seconds 5] [--poll-ms 54 1]

Builds the ina3221x iio files of a TX1 (rail_name_0..2, in_power/in_voltage/in_current<n>_input) in a temporary
folder, runs runner.power's INA3221 source over it for each poll interval and prints the sampler thread's CPU
time (getrusage RUSAGE_THREAD inside the thread) as a share of wall time (= of one core) and of all cores, reads
per second and failed reads. The fake tree is plain files: on a board each read of a real attribute also costs
an I2C transaction in the driver, so these figures are a lower bound of the board's.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from runner.power import open_sources


def fake_tx1(root: Path) -> Path:
    folder = root / "sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0"
    folder.mkdir(parents=True)
    values = {"VDD_IN": (2500, 5048, 495), "VDD_GPU": (120, 1000, 120), "VDD_CPU": (310, 1000, 310)}
    for n, (rail, (p, v, c)) in enumerate(values.items()):
        (folder / f"rail_name_{n}").write_text(rail + "\n")
        (folder / f"in_power{n}_input").write_text(f"{p}\n")
        (folder / f"in_voltage{n}_input").write_text(f"{v}\n")
        (folder / f"in_current{n}_input").write_text(f"{c}\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each poll interval runs (default 5)")
    parser.add_argument("--poll-ms", type=float, nargs="+", default=[54.0, 1.0], help="poll intervals (ms)")
    parser.add_argument("--cpu", type=int, help="pin the sampler thread to this CPU")
    args = parser.parse_args()

    print(f"CPUs: {os.cpu_count()}  run per poll interval: {args.seconds:g} s  fake TX1 tree (3 rails, "
          "9 files per read)")
    with tempfile.TemporaryDirectory() as tmp:
        fake_tx1(Path(tmp))
        for poll_ms in args.poll_ms:
            [source], _ = open_sources(["ina3221"], root=tmp, poll_ms=poll_ms,
                                       sampler_cpus=None if args.cpu is None else [args.cpu])
            source.start()
            time.sleep(args.seconds)
            source.stop()
            s = source.stats()
            samples = source.samples(None)
            print(f"poll {poll_ms:g} ms: {s['reads']} reads in {s['wall_s']:.2f} s ({s['reads_per_s']:.1f}/s, "
                  f"expected {1000 / poll_ms:.1f}/s), failed {s['failed_reads']}, missed polls {s['missed_polls']}, "
                  f"read {s['read_ms_mean']:.3f} ms mean / {s['read_ms_max']:.3f} ms max")
            print(f"    sampler CPU {s['cpu_s']:.4f} s = {s['cpu_share_of_one_core']:.3%} of wall time (one core), "
                  f"{s['cpu_share_of_all_cores']:.3%} of all {s['cpu_count']} cores; "
                  f"{len(samples)} rail samples")


if __name__ == "__main__":
    main()
