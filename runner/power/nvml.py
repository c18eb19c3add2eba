"""NVIDIA GPU board power through NVML (desktop and server GPUs; NVML has no power on a Jetson).

Optional: it needs the ``pynvml`` module (package nvidia-ml-py) and an NVIDIA driver. When ``import pynvml`` fails
the source is simply not available; nothing else in the runner needs it.

One rail per GPU that reports power, named ``GPU<index>``, from ``nvmlDeviceGetPowerUsage`` (mW). The driver
refreshes that value about every 20 ms (approximate, model and driver dependent; on some recent GPUs the value
is itself an average over a longer window), so ``update_interval_ms`` is 20 and the poll interval defaults to it.
No GPU rail is the whole machine's input, so none is marked total.
"""

import collections

from runner.power.common import PowerSourceError, SampledSource, rail_entry, rail_samples

KIND = "nvml"
UPDATE_INTERVAL_MS = 20.0


def _import():
    try:
        import pynvml
    except Exception as e:  # ImportError, or a broken install
        why = f"{type(e).__name__}: {e}"
        raise PowerSourceError(f"nvml: pynvml is not importable ({why}; pip install nvidia-ml-py)") from None
    return pynvml


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class NvmlGpus(SampledSource):
    """Every GPU that reports power, as one source with one rail per GPU."""

    kind = KIND
    driver = "NVML (pynvml)"

    def __init__(self, name=KIND, update_interval_ms=None, poll_ms=None, sampler_cpus=None):
        interval = float(update_interval_ms) if update_interval_ms is not None else UPDATE_INTERVAL_MS
        SampledSource.__init__(self, name, interval, poll_ms if poll_ms else interval, sampler_cpus)
        self.pynvml = _import()
        self.gpus = []  # (index, GPU name)
        self._handles = []
        self._initialised = False
        self._init()
        try:
            count = self.pynvml.nvmlDeviceGetCount()
            for i in range(count):
                handle = self.pynvml.nvmlDeviceGetHandleByIndex(i)
                try:
                    self.pynvml.nvmlDeviceGetPowerUsage(handle)
                except Exception as e:  # NVMLError_NotSupported and the like: this GPU has no power reading
                    self.notes.append(f"GPU{i}: no power reading ({e})")
                    continue
                self.gpus.append((i, _text(self.pynvml.nvmlDeviceGetName(handle))))
            version = None
            try:
                version = _text(self.pynvml.nvmlSystemGetDriverVersion())
            except Exception:
                pass
            self.driver_version = version
        finally:
            self._shutdown()
        if not self.gpus:
            raise PowerSourceError(f"nvml: no GPU reports power ({count} GPU(s) found)")
        self.location = "NVML"
        self.rails = [rail_entry(f"GPU{i}", False) for i, _ in self.gpus]
        self._fields = [(r["name"], k, None, None) for k, r in enumerate(self.rails)]

    def _init(self):
        try:
            self.pynvml.nvmlInit()
        except Exception as e:
            raise PowerSourceError(f"nvml: nvmlInit failed ({e})") from None
        self._initialised = True

    def _shutdown(self):
        if self._initialised:
            self._initialised = False
            try:
                self.pynvml.nvmlShutdown()
            except Exception:
                pass

    def start(self):
        self._init()
        self._handles = [self.pynvml.nvmlDeviceGetHandleByIndex(i) for i, _ in self.gpus]
        SampledSource.start(self)

    def stop(self):
        SampledSource.stop(self)
        self._shutdown()

    def read(self):
        get = self.pynvml.nvmlDeviceGetPowerUsage
        return [get(h) for h in self._handles]

    def _rows(self, times, rows):
        return rail_samples(times, rows, self._fields)

    def _details(self):
        return [
            ("gpus", collections.OrderedDict((f"GPU{i}", name) for i, name in self.gpus)),
            ("driver_version", self.driver_version),
            ("update_interval_source", "approximate: NVML refreshes the power reading about every 20 ms"),
            ("units", "nvmlDeviceGetPowerUsage mW"),
        ]


def find(update_interval_ms=None, poll_ms=None, sampler_cpus=None):
    """(sources, problems): the NVML source when pynvml imports and a GPU reports power.

    pynvml not being installed is no problem worth a note (most machines lack it); anything after that is.
    """
    try:
        _import()
    except PowerSourceError:
        return [], []
    try:
        return [NvmlGpus(KIND, update_interval_ms, poll_ms, sampler_cpus)], []
    except PowerSourceError as e:
        return [], [str(e)]


def looked_for():
    return "pynvml (nvidia-ml-py) and a GPU that reports nvmlDeviceGetPowerUsage"
