"""One place that opens ONNX models, so every model picks providers the same way.

onnxruntime-gpu lists the CUDA provider even on a machine with no GPU, and asking for it
there prints a warning and falls back. So CUDA is requested only when an NVIDIA device
is actually present (or `SHOPRANK_DEVICE=cuda`), and `SHOPRANK_DEVICE=cpu` forces the CPU.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from indexer import settings


def gpu_present() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists()


def select_providers() -> list[str]:
    wanted = settings.device()
    available = ort.get_available_providers()
    use_cuda = wanted == "cuda" or (wanted == "auto" and gpu_present())
    if use_cuda and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(model: str | Path | bytes, threads: int = 1, cpu_only: bool = False) -> ort.InferenceSession:
    """Serve with one intra-op thread per request: on 2 cores, two threads per request
    collapse as soon as another process takes a core. Offline jobs pass threads=0 (all).
    `model` is a file or a serialized graph; `cpu_only` for graphs with no CUDA kernels,
    which would only pay for copies to the device and back."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"] if cpu_only else select_providers()
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=options,
                                providers=providers)
