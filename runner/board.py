"""Description of the board and host for the manifest, from what is readable (missing things are null)."""

import collections
import glob
import os
import platform
import re
import socket


def read_text(path):
    """A small text file's content without whitespace and NULs (device-tree strings end in NUL), or None."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    text = data.replace(b"\x00", b"").decode("utf-8", "replace").strip()
    return text or None


def l4t_release(text):
    """'R32.7.1' from the first line of /etc/nv_tegra_release ('# R32 (release), REVISION: 7.1, ...')."""
    if not text:
        return None
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not m:
        return None
    return f"R{m.group(1)}.{m.group(2)}"


EMC_RATE_FILES = (
    "sys/kernel/debug/clock/emc/rate",  # TX1/TX2 (L4T 28/32), debugfs: readable as root
    "sys/kernel/debug/bpmp/debug/clk/emc/rate",  # Xavier and later
)


def _number(text):
    return int(text) if text is not None and text.isdigit() else text


def describe_clocks(root="/"):
    """CPU, GPU (devfreq) and memory (EMC) clocks and governors, where readable: a TX1 user pins clocks
    (jetson_clocks) for repeatable runs, and the manifest records what they were."""
    clocks = collections.OrderedDict()
    for cpufreq in sorted(glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq"))):
        cpu = os.path.basename(os.path.dirname(cpufreq))
        for key, name in (("khz", "scaling_cur_freq"), ("min_khz", "scaling_min_freq"),
                          ("max_khz", "scaling_max_freq"), ("governor", "scaling_governor")):
            value = read_text(os.path.join(cpufreq, name))
            if value is not None:
                clocks[cpu + "_" + key] = _number(value)
    for device in sorted(glob.glob(os.path.join(root, "sys/class/devfreq/*"))):
        name = "devfreq_" + os.path.basename(device)
        for key, file_name in (("hz", "cur_freq"), ("min_hz", "min_freq"), ("max_hz", "max_freq"),
                               ("governor", "governor")):
            value = read_text(os.path.join(device, file_name))
            if value is not None:
                clocks[name + "_" + key] = _number(value)
    for path in EMC_RATE_FILES:
        value = read_text(os.path.join(root, path))
        if value is not None:
            clocks["emc_hz"] = _number(value)
            break
    return clocks


def describe_board():
    uname = platform.uname()
    return collections.OrderedDict([
        ("model", read_text("/proc/device-tree/model")),
        ("l4t", l4t_release(read_text("/etc/nv_tegra_release"))),
        ("kernel", uname.release or None),
        ("machine", uname.machine or None),
        ("clocks", describe_clocks()),
    ])


def describe_host():
    try:
        import numpy
        numpy_version = numpy.__version__
    except ImportError:  # pragma: no cover - numpy is required on the board
        numpy_version = None
    return collections.OrderedDict([
        ("hostname", socket.gethostname()),
        ("os", platform.system() or None),
        ("python", platform.python_version()),
        ("numpy", numpy_version),
    ])
