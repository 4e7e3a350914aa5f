"""What makes a training step fast on each device: the precision it runs in, and on a CPU
how memory is handed out. Figures: docs/performance.md#training-throughput.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from model.predictor import cpu_has_bfloat16

PRECISIONS = ("auto", "fp32")
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The dtype a training step autocasts to, None for float32.

    ``auto``: bfloat16 on GPUs that have it (Ampere on) and on CPUs with AVX-512 BF16 or
    AMX; float16 on older GPUs, whose steps need a ``GradScaler``; float32 on other CPUs.
    """
    if precision == "fp32":
        return None
    if precision != "auto":
        raise ValueError(f"precision {precision!r}: expected one of {PRECISIONS}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(False) else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_bfloat16() else None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` (None: float32 throughout). On a CPU, depthwise convolutions
    stay in float32: oneDNN's bfloat16 depthwise backward pass is about 4x slower than its
    float32 one on AVX-512 BF16, which undid the rest of bfloat16's gain."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autocast(device.type, dtype=dtype, enabled=dtype is not None))
        if dtype is not None and device.type == "cpu":
            stack.enter_context(_Float32Depthwise(dtype))
        yield


class _Float32Depthwise(TorchFunctionMode):
    """Runs each depthwise ``conv2d`` in float32 and hands on its output in ``dtype``, the
    autocast's, as every other convolution under autocast."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None) -> Any:
        kwargs = kwargs or {}
        if func is F.conv2d:
            images, weight = args[0], args[1]
            groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
            if groups > 1 and groups == images.shape[1]:
                with torch.autocast(images.device.type, enabled=False):
                    out = func(images.float(), weight.float(), *args[2:], **kwargs)
                return out.to(self.dtype)
        return func(*args, **kwargs)


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory tensors free for the next ones (False where
    the C library is not glibc).

    By default glibc maps every block over 32 MB afresh and unmaps it when freed: each
    training step's activations (about 120 MB a tensor at batch 32 and 240x320) then cost a
    page fault per 4 KB page of each, every step. Kept, the process holds its peak memory
    (about 6 GB for that step in float32) and a step is about 1.4x faster on a CPU.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # Every block from the heap, and the heap never trimmed (-1: SIZE_MAX).
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, -1))
