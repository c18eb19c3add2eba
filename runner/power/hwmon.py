"""The INA3221 through the mainline hwmon driver ``ina3221`` (Jetson boards on JetPack 5 and later).

Each device is ``/sys/class/hwmon/hwmon<k>/`` with ``name`` = ``ina3221`` (older kernels keep the attributes in
its ``device/`` folder). Per channel <n>: ``in<n>_label`` (rail name from the device tree), ``in<n>_input`` (bus
voltage, mV), ``curr<n>_input`` (mA); there is no power file, so power = V x I / 1000 (mW). Channels count from
1 (L4T 34.1 and later) or 0 (L4T 32.x); both are accepted. Labels containing the word ``NC`` (not connected),
the shunt-sum channel (channel 7, label ``sum of shunt voltages``) and channels without a current are skipped.
``update_interval`` (ms), when present, is the sensor's update interval.
"""

import collections
import glob
import os
import re

from runner.power.common import (
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

KIND = "hwmon"
CHIP = "ina3221"
PATTERN = "sys/class/hwmon/hwmon*"
SHUNT_SUM_CHANNEL = 7
DEFAULT_POLL_MS = 20.0  # when the update interval is unknown

_LABEL = re.compile(r"^in(\d+)_label$")
_I2C_ID = re.compile(r"^\d+-00[0-9a-fA-F]{2}$")


def _attribute_folder(hwmon):
    """The folder holding ``name`` = ina3221 and the channel files: hwmon<k>/ or hwmon<k>/device/, else None."""
    for folder in (hwmon, os.path.join(hwmon, "device")):
        try:
            if read_text(os.path.join(folder, "name")) == CHIP:
                return folder
        except OSError:
            continue
    return None


def _i2c_id(folder):
    """'1-0040' of the I2C client the hwmon device belongs to, when it can be seen."""
    real = os.path.realpath(folder)
    for path in (os.path.join(folder, "device"), os.path.dirname(os.path.dirname(real)), os.path.dirname(real)):
        name = os.path.basename(os.path.realpath(path))
        if _I2C_ID.match(name):
            return name
    return None


def channels(folder):
    """[(n, label, voltage path, current path)] of the connected rail channels, by channel number."""
    found = []
    for path in glob.glob(os.path.join(folder, "in*_label")):
        m = _LABEL.match(os.path.basename(path))
        if not m:
            continue
        n = int(m.group(1))
        try:
            label = read_text(path)
        except OSError:
            continue
        if n == SHUNT_SUM_CHANNEL or "sum of shunt" in label.lower() or is_nc_label(label):
            continue
        voltage = os.path.join(folder, f"in{n}_input")
        current = os.path.join(folder, f"curr{n}_input")
        if not (os.path.isfile(voltage) and os.path.isfile(current)):
            continue
        found.append((n, label, voltage, current))
    return sorted(found)


class INA3221Hwmon(SampledSource):
    """One INA3221 through the hwmon driver: one rail per connected channel, power = V x I / 1000."""

    kind = KIND
    driver = "ina3221 (hwmon)"

    def __init__(self, folder, name=KIND, update_interval_ms=None, poll_ms=None, sampler_cpus=None):
        interval, source = None, None
        if update_interval_ms is not None:
            interval, source = float(update_interval_ms), "given"
        else:
            path = os.path.join(folder, "update_interval")
            try:
                interval, source = float(read_number(path)), path
            except (OSError, ValueError):
                source = "unknown: no readable update_interval file"
        poll = poll_ms if poll_ms else (interval if interval else DEFAULT_POLL_MS)
        SampledSource.__init__(self, name, interval, poll, sampler_cpus)
        self.location = folder
        self.i2c = _i2c_id(folder)
        self.update_interval_note = source
        self.channels = channels(folder)
        if not self.channels:
            raise PowerSourceError(f"{name}: no connected channel in {folder} (in<n>_label with in<n>_input and "
                                   "curr<n>_input, not NC, not the shunt sum)")
        for _, _, voltage, current in self.channels:
            for path in (voltage, current):
                ok, why = readable(path)
                if not ok:
                    raise PowerSourceError(f"{name}: cannot read {path} ({why})")
        self.rails = [rail_entry(label, is_total_rail(label)) for _, label, _, _ in self.channels]
        self._paths = [(v, c) for _, _, v, c in self.channels]
        self._fields = [(label, 3 * k, 3 * k + 1, 3 * k + 2) for k, (_, label, _, _) in enumerate(self.channels)]
        if interval and self.poll_ms < interval:
            self.notes.append(f"polled every {self.poll_ms:g} ms, faster than the sensor's update interval: "
                              "consecutive readings repeat values")

    def read(self):
        out = []
        for voltage, current in self._paths:
            v = read_number(voltage)
            c = read_number(current)
            out.extend((round(v * c / 1000.0, 3), v, c))
        return out

    def _rows(self, times, rows):
        return rail_samples(times, rows, self._fields)

    def _details(self):
        numbers = [n for n, _, _, _ in self.channels]
        return [
            ("i2c", self.i2c),
            ("channels", collections.OrderedDict((label, n) for n, label, _, _ in self.channels)),
            ("channel_numbering", "from 0" if min(numbers) == 0 else "from 1"),
            ("update_interval_source", self.update_interval_note),
            ("units", "in<n>_input mV, curr<n>_input mA, power = V x I / 1000 mW"),
        ]


def find(root, update_interval_ms=None, poll_ms=None, sampler_cpus=None):
    """(sources, problems): one source per hwmon device named ina3221 under ``root``."""
    folders = []
    seen = set()
    for hwmon in sorted(glob.glob(under(root, PATTERN))):
        folder = _attribute_folder(hwmon)
        if folder is None or os.path.realpath(folder) in seen:
            continue
        seen.add(os.path.realpath(folder))
        folders.append(folder)
    sources, problems = [], []
    for folder in folders:
        name = KIND
        if len(folders) > 1:
            name = "{}-{}".format(KIND, _i2c_id(folder) or os.path.basename(folder.rstrip("/")))
        try:
            sources.append(INA3221Hwmon(folder, name, update_interval_ms, poll_ms, sampler_cpus))
        except PowerSourceError as e:
            problems.append(str(e))
    return sources, problems


def looked_for(root):
    return f"hwmon devices named {CHIP} in /{PATTERN} (under {root})"
