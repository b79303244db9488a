"""studio.hardware: the no-GPU / no-NVML path, readings through a fake NVML, the peak sampler,
CPU/RAM, and (GPU marker) a real allocation seen by the sampler."""

from __future__ import annotations

import sys
import time
import types

import pytest

from studio import hardware

GIB = 1024**3


class _NVMLError(Exception):
    pass


def fake_pynvml(used_seq=(10 * GIB,), n=1, fail_init=None, no_v2=False):
    """A stand-in for the pynvml module: one 80 GiB GPU whose used memory follows used_seq."""
    state = {"i": 0, "inits": 0, "shutdowns": 0}

    def used():
        v = used_seq[min(state["i"], len(used_seq) - 1)]
        state["i"] += 1
        return v

    def init():
        if fail_init:
            raise fail_init
        state["inits"] += 1

    def mem(handle, version=None):
        if version is not None and no_v2:
            raise _NVMLError("v2 not supported")
        u = used()
        return types.SimpleNamespace(total=80 * GIB, used=u, free=80 * GIB - u, reserved=0)

    m = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.NVML_TEMPERATURE_GPU = 0
    m.nvmlMemory_v2 = 0x02000028
    m.nvmlInit = init
    m.nvmlShutdown = lambda: state.__setitem__("shutdowns", state["shutdowns"] + 1)
    m.nvmlDeviceGetCount = lambda: n
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"
    m.nvmlDeviceGetMemoryInfo = mem
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    m.nvmlDeviceGetTemperature = lambda h, kind: 61
    m.nvmlDeviceGetPowerUsage = lambda h: 350_500  # mW
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000

    def no_power(h):
        raise _NVMLError("Not Supported")

    m.no_power = no_power
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=4242, usedGpuMemory=3 * GIB)]
    m.nvmlSystemGetDriverVersion = lambda: "580.159"
    m.state = state
    return m


def test_no_nvml_library_gives_empty_list_and_a_plain_sentence(monkeypatch):
    err = type("NVMLError_LibraryNotFound", (_NVMLError,), {})("NVML Shared Library Not Found")
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_init=err))
    assert hardware.gpus() == []
    msg = hardware.nvml_status()
    assert msg.startswith("No NVIDIA GPU found") and "CPU" in msg and "Traceback" not in msg
    assert hardware.device_used_gib() is None
    assert hardware.PeakSampler().start().stop() is None


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    assert hardware.gpus() == []
    assert "pip install nvidia-ml-py" in hardware.nvml_status()


def test_this_machine_without_gpu_reports_so():
    # The real library on a CPU-only machine (STACK_NOTES: NVMLError_LibraryNotFound).
    pytest.importorskip("pynvml")
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    except ImportError:
        pass
    assert hardware.gpus() == []
    assert "GPU" in hardware.nvml_status()


def test_readings_through_fake_nvml(monkeypatch):
    nv = fake_pynvml(used_seq=(20 * GIB,))
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    (g,) = hardware.gpus()
    assert g.name == "NVIDIA H100 80GB HBM3" and g.index == 0
    assert g.total_gib == 80 and g.used_gib == 20 and g.free_gib == 60
    assert (g.util_pct, g.temperature_c, g.power_w, g.power_limit_w) == (87, 61, 350.5, 700)
    assert g.processes[0].pid == 4242 and g.processes[0].used_gib == 3
    assert nv.state["inits"] == nv.state["shutdowns"]  # NVML is released after each reading
    assert "1 NVIDIA GPU visible" in hardware.nvml_status()


def test_unsupported_readings_become_none(monkeypatch):
    nv = fake_pynvml()
    nv.nvmlDeviceGetPowerUsage = nv.no_power
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    (g,) = hardware.gpus()
    assert g.power_w is None and g.used_gib == 10


def test_old_driver_without_v2_memory_query_falls_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(used_seq=(5 * GIB,), no_v2=True))
    assert hardware.gpus()[0].used_gib == 5


def test_peak_sampler_keeps_the_highest_reading(monkeypatch):
    seq = [2 * GIB, 3 * GIB, 9 * GIB, 4 * GIB] + [1 * GIB] * 1000
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(used_seq=seq))
    s = hardware.PeakSampler(interval_s=0.005).start()
    deadline = time.time() + 5
    while s.samples < 6 and time.time() < deadline:
        time.sleep(0.01)
    peak = s.stop()
    assert peak == 9 and s.baseline_gib == 2 and s.samples >= 6


def test_cpu_and_ram_readings_are_sane():
    r = hardware.cpu_ram()
    assert r["cores"] >= 1 and 0 <= r["cpu_pct"] <= 100
    assert 0 < r["ram_used_gib"] < r["ram_total_gib"] and 0 <= r["ram_pct"] <= 100


def test_mps_is_false_off_apple_silicon():
    if sys.platform != "darwin":
        assert hardware.mps_available() is False


def test_summary_is_plain_data():
    import json

    s = hardware.summary()
    json.dumps(s)
    assert set(s) == {"gpus", "status", "cpu_ram", "mps", "time"}


@pytest.mark.gpu
def test_peak_sampler_sees_a_real_allocation():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    assert hardware.gpus(), hardware.nvml_status()
    s = hardware.PeakSampler(torch.cuda.current_device(), interval_s=0.01).start()
    x = torch.empty(int(2 * GIB), dtype=torch.uint8, device="cuda")
    time.sleep(0.3)
    peak = s.stop()
    del x
    assert peak - s.baseline_gib >= 1.9
