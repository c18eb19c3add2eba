"""The INA3221 through NVIDIA's L4T iio driver ``ina3221x`` (Jetson TX1, TX2, Nano on JetPack 4 and older).

Each device folder holds, per channel <n> (0, 1, 2): ``rail_name_<n>`` (the rail's name from the device tree),
``in_power<n>_input`` (mW), ``in_voltage<n>_input`` (bus voltage, mV), ``in_current<n>_input`` (mA). Channels
named ``NC`` or with an empty name are not connected and skipped. The folder's place differs between L4T
releases; ``find_devices`` looks in all the places below (relative to the sysfs root) and keeps each device
once (by its real path).

The sensor produces one new, running-averaged value every conversion cycle. The TX1's default configuration
(0x7607: 3 channels, 64-sample averaging, 140 us bus + 140 us shunt conversion) gives 3 x 64 x 0.28 ms =
53.8 ms, so the update interval defaults to 54 ms; the driver does not expose its configuration, so another
configuration must be given (``update_interval_ms``). Reading faster returns repeated values.
"""

import collections
import glob
import os
import re

from runner.power.common import (
    NAN,
    PowerSourceError,
    SampledSource,
    is_nc_label,
    is_total_rail,
    rail_entry,
    rail_samples,
    read_number,
    read_text,
    readable,
    under,
)

KIND = "ina3221"
DRIVER = "ina3221x"
DEFAULT_UPDATE_INTERVAL_MS = 54.0
UPDATE_INTERVAL_NOTE = ("default for the TX1's default configuration 0x7607: 3 channels x 64 averages x "
                        "(140 + 140) us = 53.8 ms; the driver does not expose the configuration")

# Where L4T releases put the iio device folder (relative to the sysfs root).
LAYOUTS = (
    "sys/bus/i2c/drivers/ina3221x/*/iio:device*",
    "sys/bus/i2c/drivers/ina3221x/*/iio_device",
    "sys/devices/platform/*i2c*/i2c-*/*-00*/iio:device*",
    "sys/devices/platform/*i2c*/i2c-*/*-00*/iio_device",
    "sys/devices/*i2c*/i2c-*/*-00*/iio:device*",
    "sys/devices/*i2c*/i2c-*/*-00*/iio_device",
    "sys/bus/iio/devices/iio:device*",
)

_RAIL_FILE = re.compile(r"^rail_name_(\d+)$")
_I2C_ID = re.compile(r"^\d+-00[0-9a-fA-F]{2}$")


def _i2c_id(folder):
    """'1-0040' for a device folder under an I2C client (by path or by real path), else None."""
    for path in (folder, os.path.realpath(folder)):
        parent = os.path.basename(os.path.dirname(path.rstrip("/")))
        if _I2C_ID.match(parent):
            return parent
    return None


def candidate_folders(root):
    """Device folders that have rail_name_* files, each once, in the order of LAYOUTS."""
    seen = set()
    out = []
    for pattern in LAYOUTS:
        for folder in sorted(glob.glob(under(root, pattern))):
            if not os.path.isdir(folder) or not glob.glob(os.path.join(folder, "rail_name_*")):
                continue
            if pattern.startswith("sys/bus/iio/"):
                try:
                    if not read_text(os.path.join(folder, "name")).startswith("ina3221"):
                        continue
                except OSError:
                    continue
            real = os.path.realpath(folder)
            if real in seen:
                continue
            seen.add(real)
            out.append(folder)
    return out


def channels(folder):
    """[(n, rail name, power path or None, voltage path or None, current path or None)] of connected channels."""
    found = []
    for path in glob.glob(os.path.join(folder, "rail_name_*")):
        m = _RAIL_FILE.match(os.path.basename(path))
        if not m:
            continue
        n = int(m.group(1))
        try:
            label = read_text(path)
        except OSError:
            continue
        if is_nc_label(label):
            continue

        def present(name):
            p = os.path.join(folder, name)
            return p if os.path.isfile(p) else None

        power = present(f"in_power{n}_input")
        voltage = present(f"in_voltage{n}_input")
        current = present(f"in_current{n}_input")
        if power is None and (voltage is None or current is None):
            continue
        found.append((n, label, power, voltage, current))
    return sorted(found)


class INA3221Iio(SampledSource):
    """One INA3221 through the ina3221x iio driver: one rail per connected channel."""

    kind = KIND
    driver = "ina3221x (L4T iio)"

    def __init__(self, folder, name=KIND, update_interval_ms=None, poll_ms=None, sampler_cpus=None):
        given = update_interval_ms is not None
        interval = float(update_interval_ms) if given else DEFAULT_UPDATE_INTERVAL_MS
        SampledSource.__init__(self, name, interval, poll_ms if poll_ms else interval, sampler_cpus)
        self.location = folder
        self.i2c = _i2c_id(folder)
        self.channels = channels(folder)
        if not self.channels:
            raise PowerSourceError(f"{name}: no connected channel in {folder} (every rail_name_<n> is NC or empty, or "
                                   "in_power<n>_input is missing)")
        for _, _, power, voltage, current in self.channels:
            for path in (power, voltage, current):
                if path is not None:
                    ok, why = readable(path)
                    if not ok:
                        raise PowerSourceError(f"{name}: cannot read {path} ({why})")
        self.rails = [rail_entry(label, is_total_rail(label)) for _, label, _, _, _ in self.channels]
        self.update_interval_note = "given" if given else UPDATE_INTERVAL_NOTE
        self._paths = []
        self._fields = []
        for k, (_, label, power, voltage, current) in enumerate(self.channels):
            self._paths.extend([power, voltage, current])
            self._fields.append((label, 3 * k, 3 * k + 1 if voltage else None, 3 * k + 2 if current else None))
        if self.poll_ms < self.update_interval_ms:
            self.notes.append(f"polled every {self.poll_ms:g} ms, faster than the sensor's update interval: "
                              "consecutive readings repeat values")

    def read(self):
        out = []
        paths = self._paths
        for i in range(0, len(paths), 3):
            power, voltage, current = paths[i], paths[i + 1], paths[i + 2]
            v = read_number(voltage) if voltage else NAN
            c = read_number(current) if current else NAN
            if power:
                p = read_number(power)
            else:  # no power file: the driver's own formula, V(mV) x I(mA) / 1000
                p = round(v * c / 1000.0, 3)
            out.extend((p, v, c))
        return out

    def _rows(self, times, rows):
        return rail_samples(times, rows, self._fields)

    def _details(self):
        return [
            ("i2c", self.i2c),
            ("channels", collections.OrderedDict((label, n) for n, label, _, _, _ in self.channels)),
            ("update_interval_source", self.update_interval_note),
            ("units", "in_power<n>_input mW, in_voltage<n>_input mV, in_current<n>_input mA"),
        ]


def find(root, update_interval_ms=None, poll_ms=None, sampler_cpus=None):
    """(sources, problems): one source per INA3221 iio device under ``root``; problems are one-line notes."""
    folders = candidate_folders(root)
    sources, problems = [], []
    for folder in folders:
        i2c = _i2c_id(folder)
        name = KIND if len(folders) == 1 else f"{KIND}-{i2c or os.path.basename(folder)}"
        try:
            sources.append(INA3221Iio(folder, name, update_interval_ms, poll_ms, sampler_cpus))
        except PowerSourceError as e:
            problems.append(str(e))
    return sources, problems


def looked_for(root):
    return "rail_name_<n> in {} (under {})".format(", ".join("/" + p for p in LAYOUTS), root)
