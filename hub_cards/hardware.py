"""What a run trained on, read from the machine itself (for the "Training procedure" of a model card)."""

from __future__ import annotations

import os
import platform
from collections import Counter
from pathlib import Path


def hardware_description() -> str:
    """Describe the accelerators this process can use, e.g. "2 × NVIDIA H100 80GB HBM3" or "2 × CPU (AMD EPYC)".

    GPUs are counted and named by torch; without one, the CPU cores this process may run on (its affinity
    mask, which is what a training run actually gets) and the CPU model from /proc/cpuinfo.
    """
    import torch  # deferred: rendering a card needs torch only for this question

    if torch.cuda.is_available():
        names = Counter(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return ", ".join(f"{count} × {name}" for name, count in names.items())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "Apple silicon GPU (MPS)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} × CPU ({_cpu_model()})"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown model"
