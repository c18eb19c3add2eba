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


def _clocks():
    clocks = collections.OrderedDict()
    base = "/sys/devices/system/cpu/cpu0/cpufreq/"
    for key, name in (("cpu0_khz", "scaling_cur_freq"), ("cpu0_governor", "scaling_governor")):
        value = read_text(base + name)
        if value is not None:
            clocks[key] = int(value) if value.isdigit() else value
    for path in sorted(glob.glob("/sys/class/devfreq/*/cur_freq")):
        value = read_text(path)
        if value is not None and value.isdigit():
            clocks["devfreq_" + os.path.basename(os.path.dirname(path)) + "_hz"] = int(value)
    return clocks


def describe_board():
    uname = platform.uname()
    return collections.OrderedDict([
        ("model", read_text("/proc/device-tree/model")),
        ("l4t", l4t_release(read_text("/etc/nv_tegra_release"))),
        ("kernel", uname.release or None),
        ("machine", uname.machine or None),
        ("clocks", _clocks()),
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
