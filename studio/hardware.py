"""Live hardware readings: NVIDIA GPUs through NVML, CPU and RAM through psutil, Apple MPS.

This is the only module that imports pynvml or psutil (lazily, inside functions). Every reading
degrades gracefully: without a GPU or without the NVML library, `gpus()` returns an empty list and
`nvml_status()` says why in one plain sentence. It also owns `PeakSampler`, the background thread
the training worker uses to record the peak device memory that nvidia-smi would show.

It does not estimate memory (studio.vram does) and never imports torch at module level.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

GIB = 1024**3


@dataclass
class GpuProcess:
    pid: int
    name: str
    used_gib: float | None  # None where the driver does not report it (e.g. inside some containers)


@dataclass
class GpuInfo:
    index: int
    name: str
    total_gib: float
    used_gib: float
    free_gib: float
    util_pct: float | None = None  # % of time a kernel ran in the last sample period
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    processes: list[GpuProcess] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nvml():
    """Import pynvml and initialise NVML; raise the underlying error when either fails."""
    import pynvml  # nvidia-ml-py

    pynvml.nvmlInit()
    return pynvml


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _safe(fn, *args, default=None):
    """One NVML reading; unsupported ones (e.g. power on some cards) become `default`."""
    try:
        return fn(*args)
    except Exception:  # pynvml.NVMLError_NotSupported and friends: a missing reading, not a failure
        return default


def _memory(nv, handle) -> tuple[float, float, float]:
    """(total, used, free) bytes as nvidia-smi shows them.

    NVML's v2 query separates the memory the driver reserves for itself (~0.5 GiB on an H100,
    present even with no process) from "used"; nvidia-smi prints that v2 "used". Older drivers
    only have v1, whose "used" includes the reserve.
    """
    try:
        m = nv.nvmlDeviceGetMemoryInfo(handle, version=nv.nvmlMemory_v2)
        return float(m.total), float(m.used), float(m.free)
    except Exception:
        m = nv.nvmlDeviceGetMemoryInfo(handle)
        return float(m.total), float(m.used), float(m.free)


def _process_name(pid: int) -> str:
    try:
        import psutil

        return psutil.Process(pid).name()
    except Exception:  # the process ended or belongs to another container
        return f"pid {pid}"


def gpus() -> list[GpuInfo]:
    """Every NVIDIA GPU with its memory (GiB), load, temperature, power and processes.

    Returns [] without NVML, without a driver or without a GPU; `nvml_status()` says which.
    CUDA_VISIBLE_DEVICES is not applied: NVML sees the physical devices, as nvidia-smi does.
    """
    try:
        nv = _nvml()
    except Exception:
        return []
    out: list[GpuInfo] = []
    try:
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            total, used, free = _memory(nv, h)
            util = _safe(nv.nvmlDeviceGetUtilizationRates, h)
            temp = _safe(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
            power_mw = _safe(nv.nvmlDeviceGetPowerUsage, h)
            limit_mw = _safe(nv.nvmlDeviceGetEnforcedPowerLimit, h)
            procs = []
            for p in _safe(nv.nvmlDeviceGetComputeRunningProcesses, h, default=[]) or []:
                p_used = getattr(p, "usedGpuMemory", None)
                procs.append(GpuProcess(pid=int(p.pid), name=_process_name(int(p.pid)),
                                        used_gib=None if p_used is None else p_used / GIB))
            out.append(GpuInfo(
                index=i, name=_text(nv.nvmlDeviceGetName(h)),
                total_gib=total / GIB, used_gib=used / GIB, free_gib=free / GIB,
                util_pct=None if util is None else float(util.gpu),
                temperature_c=None if temp is None else float(temp),
                power_w=None if power_mw is None else power_mw / 1000.0,
                power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
                processes=procs))
    except Exception:
        return out
    finally:
        _safe(nv.nvmlShutdown)
    return out


def nvml_status() -> str:
    """One plain sentence about GPU visibility, for the UI and the CLI."""
    try:
        import pynvml
    except ImportError:
        return ("No GPU readings: the nvidia-ml-py package is not installed "
                "(pip install nvidia-ml-py). Training can still run on the CPU.")
    try:
        pynvml.nvmlInit()
    except Exception as e:
        name = type(e).__name__
        if "LibraryNotFound" in name:
            return ("No NVIDIA GPU found: the NVIDIA driver library (NVML) is not installed on this "
                    "machine. Training will use the CPU (slow, fine for the demo model).")
        if "DriverNotLoaded" in name or "NoPermission" in name:
            return (f"The NVIDIA driver is present but not usable ({name}). Check `nvidia-smi` "
                    "in a terminal; training will use the CPU until it works.")
        return f"GPU readings are unavailable ({name}: {e}). Training will use the CPU."
    try:
        n = pynvml.nvmlDeviceGetCount()
        driver = _text(_safe(pynvml.nvmlSystemGetDriverVersion, default="?"))
    finally:
        _safe(pynvml.nvmlShutdown)
    if n == 0:
        return "The NVIDIA driver is loaded but no GPU is visible. Training will use the CPU."
    return f"{n} NVIDIA GPU{'s' if n > 1 else ''} visible (driver {driver})."


def cpu_ram() -> dict[str, Any]:
    """CPU load and RAM: {cpu_pct, cores, ram_total_gib, ram_used_gib, ram_free_gib, ram_pct}.

    `cpu_pct` is measured over a 0.1 s window so that a first call is meaningful.
    """
    try:
        import psutil
    except ImportError:
        return {"cpu_pct": None, "cores": os.cpu_count(), "ram_total_gib": None,
                "ram_used_gib": None, "ram_free_gib": None, "ram_pct": None,
                "note": "psutil is not installed: no CPU/RAM readings (pip install psutil)."}
    vm = psutil.virtual_memory()
    return {
        "cpu_pct": float(psutil.cpu_percent(interval=0.1)),
        "cores": psutil.cpu_count(logical=True) or os.cpu_count(),
        "ram_total_gib": vm.total / GIB,
        "ram_used_gib": (vm.total - vm.available) / GIB,  # what other programs cannot have
        "ram_free_gib": vm.available / GIB,
        "ram_pct": float(vm.percent),
    }


def mps_available() -> bool:
    """True on Apple silicon where PyTorch's Metal backend works; False elsewhere (never raises)."""
    import platform
    import sys

    if sys.platform != "darwin" or platform.machine() != "arm64":
        return False  # avoid importing torch (1.3 s) where MPS cannot exist
    try:
        import torch

        return bool(torch.backends.mps.is_available())
    except Exception:
        return False


def device_used_gib(index: int = 0) -> float | None:
    """Memory in use on one GPU as nvidia-smi shows it (all processes), or None without NVML."""
    try:
        nv = _nvml()
    except Exception:
        return None
    try:
        return _memory(nv, nv.nvmlDeviceGetHandleByIndex(index))[1] / GIB
    except Exception:
        return None
    finally:
        _safe(nv.nvmlShutdown)


class PeakSampler:
    """Samples a GPU's used memory (as nvidia-smi shows it) every `interval_s` and keeps the peak.

        sampler = PeakSampler(device_index=0).start()
        ...train...
        peak_gib = sampler.stop()   # None without NVML

    The reading covers the whole device, like nvidia-smi, so other processes on the same GPU
    count too; `baseline_gib` is what was in use at start() for callers that want to subtract it.
    A 50 ms period catches the peak of a training step (steps last far longer).
    """

    def __init__(self, device_index: int = 0, interval_s: float = 0.05):
        self.device_index = int(device_index)
        self.interval_s = float(interval_s)
        self.peak_gib: float | None = None
        self.baseline_gib: float | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> "PeakSampler":
        if self._thread is not None:
            return self
        try:
            nv = _nvml()
            handle = nv.nvmlDeviceGetHandleByIndex(self.device_index)
            self.baseline_gib = _memory(nv, handle)[1] / GIB
        except Exception:
            return self  # no NVML: stop() returns None
        self._observe(self.baseline_gib)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(nv, handle), name="nvml-peak",
                                        daemon=True)
        self._thread.start()
        return self

    def _observe(self, gib: float) -> None:
        with self._lock:
            self.samples += 1
            if self.peak_gib is None or gib > self.peak_gib:
                self.peak_gib = gib

    def _run(self, nv, handle) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._observe(_memory(nv, handle)[1] / GIB)
                except Exception:
                    pass  # a transient read error must not end the sampling
                self._stop.wait(self.interval_s)
        finally:
            _safe(nv.nvmlShutdown)

    def current_peak(self) -> float | None:
        with self._lock:
            return self.peak_gib

    def stop(self) -> float | None:
        """End sampling and return the peak in GiB, or None without NVML."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2.0)
            self._thread = None
        return self.current_peak()

    def __enter__(self) -> "PeakSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def summary() -> dict[str, Any]:
    """Everything the Memory tab shows, as plain data: {gpus, status, cpu_ram, mps, time}."""
    return {"gpus": [g.to_dict() for g in gpus()], "status": nvml_status(), "cpu_ram": cpu_ram(),
            "mps": mps_available(), "time": time.time()}
