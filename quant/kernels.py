"""The CPU kernels of the fused SRC layer (``quant/csrc/src_scan.c``), built with the system C compiler and
called through ctypes on the tensors' memory.

Why a small C library: the spike recurrence is sequential in time and elementwise in neurons, so
the fast form is one loop over time per column chunk with the chunk's states in cache; GCC
vectorises that loop, ``tanh`` included (glibc's libmvec under ``-ffast-math``), and OpenMP spreads
the chunks over the cores. Measured on this project's 2-core machine (784-512-100, T = 200,
batch 64; ``docs/benchmarks/train_speed_cpu.md``): the fused forward of the 512-neuron layer takes
7 ms where the eager PyTorch loop takes 185 ms. numba cannot vectorise ``tanh`` (it calls libm
one value at a time), and ``torch.compile``'s inductor still issues one kernel per time step.
The library builds in about a second (no PyTorch headers) on first use, into a per-user cache
keyed by the source, the flags and the CPU; ``python -m quant.kernels`` builds it ahead (``make
install`` does). Without a C compiler the model falls back to the PyTorch implementation.
"""

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

__all__ = ["available", "library", "layer_forward", "layer_backward", "events_forward", "events_backward",
           "rate_encode", "KernelError"]

SOURCE = Path(__file__).resolve().parent / "csrc" / "src_scan.c"
FLAGS = ["-O3", "-ffast-math", "-march=native", "-fopenmp", "-fPIC"]
#: Linked without ``-ffast-math``: with it GCC (before 13) links ``crtfastmath.o`` into the shared
#: library, whose constructor turns on flush-to-zero for the whole process that loads it, and every
#: subnormal float in numpy, torch or hypothesis becomes zero from then on.
LINK_FLAGS = ["-shared", "-fopenmp"]
_library = None
_failed = None


class KernelError(RuntimeError):
    """The kernels could not be built or loaded."""


def _cpu_signature():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_dir():
    root = os.environ.get("SRC_FPGA_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                                                             "src-fpga")
    return Path(root) / "kernels"


def build(verbose=False):
    """Compile the library if it is not in the cache; return its path. Raises :class:`KernelError`."""
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise KernelError("no C compiler (gcc) found")
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([compiler] + FLAGS + LINK_FLAGS).encode()
                         + _cpu_signature().encode()).hexdigest()[:16]
    target = _cache_dir() / key / "libsrc_scan.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".so", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        objects = partial.with_suffix(".o")
        for command in ([compiler, *FLAGS, "-c", str(SOURCE), "-o", str(objects)],
                        [compiler, *LINK_FLAGS, str(objects), "-o", str(partial), "-lm"]):
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode:
                raise KernelError(f"{compiler} failed on {SOURCE.name}: {result.stderr.strip()[-500:]}")
        partial.replace(target)  # atomic: a concurrent build finds a whole file or none
    finally:
        partial.unlink(missing_ok=True)
        partial.with_suffix(".o").unlink(missing_ok=True)
    if verbose:
        print(f"built {target}")
    return target


def library():
    """The loaded library (built on first use). Raises :class:`KernelError` when it cannot be had."""
    global _library, _failed
    if _library is not None:
        return _library
    if _failed is not None:
        raise KernelError(_failed)
    try:
        lib = ctypes.CDLL(str(build()))
    except (KernelError, OSError) as error:
        _failed = str(error)
        raise KernelError(_failed) from None
    P, I = ctypes.c_void_p, ctypes.c_int64
    for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        getattr(lib, f"src_forward_{suffix}").argtypes = [I, I, I, P, P] + [real] * 6 + [P] * 6
        getattr(lib, f"src_backward_{suffix}").argtypes = [I, I, P, P, P, real, real, P, P]
        getattr(lib, f"events_forward_{suffix}").argtypes = [I, I, I, P, P, P]
        getattr(lib, f"events_backward_{suffix}").argtypes = [I, I, I, P, P, P, P]
        getattr(lib, f"events_threads_{suffix}").restype = I
        getattr(lib, f"rate_encode_{suffix}").argtypes = [I, I, I, P, P, P, I, P]
    lib.src_set_threads.argtypes = [I]
    _keep_freed_memory()
    _library = lib
    return lib


def _keep_freed_memory():
    """Ask glibc to keep freed memory instead of unmapping every large block.

    A training step allocates and frees tens of arrays of tens of MB; by default glibc returns
    each to the system and the next allocation faults its pages in again, zeroed. Measured on a
    784-512-100 step: median 78-97 ms before, 65-71 ms after (same process, whichever model runs).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def available():
    """True when the kernels are built (or can be) and loaded; warns once when they cannot."""
    try:
        library()
        return True
    except KernelError as error:
        if not getattr(available, "_warned", False):
            warnings.warn(f"fused SRC kernels unavailable ({error}); using the PyTorch implementation")
            available._warned = True
        return False


def _check(*tensors):
    dtype = tensors[0].dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the fused kernels take float32 or float64, got {dtype}")
    for t in tensors:
        if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous():
            raise ValueError("the fused kernels take contiguous CPU tensors of one dtype")
    return "f32" if dtype == torch.float32 else "f64"


def _ptr(t):
    return None if t is None else t.data_ptr()


def layer_forward(u, bias, params, record=False):
    """The elementwise part of one SRC layer over all steps.

    ``u`` is the input projection ``(T, B, N)``, contiguous. Returns ``(s, h, x, i, h_s, active)``:
    ``i`` and ``h_s`` with ``record`` (else ``None``), ``active`` the number of ``s > 0``.
    """
    suffix = _check(u, bias)
    lib = library()
    steps, n = u.shape[0], u.shape[-1]
    m = u[0].numel()
    s, h, x = (torch.empty_like(u) for _ in range(3))
    i, hs = (torch.empty_like(u), torch.empty_like(u)) if record else (None, None)
    p = params
    active = ctypes.c_int64(0)
    lib.src_set_threads(torch.get_num_threads())
    getattr(lib, f"src_forward_{suffix}")(steps, m, n, u.data_ptr(), bias.data_ptr(), p.alpha, p.rho, p.r, p.r_s,
                                          p.z_hyp, p.z_dep, s.data_ptr(), h.data_ptr(), x.data_ptr(), _ptr(i),
                                          _ptr(hs), ctypes.byref(active))
    return s, h, x, i, hs, active.value


def layer_backward(g_s, h, x, params):
    """``(g_u, g_b)`` of one layer from the gradient of its spikes (the paper's gradient, see the C source)."""
    g_s = g_s.contiguous()
    suffix = _check(g_s, h, x)
    lib = library()
    steps, n = g_s.shape[0], g_s.shape[-1]
    m = g_s[0].numel()
    g_u = torch.empty_like(g_s)
    g_b = torch.empty(m, dtype=g_s.dtype)
    lib.src_set_threads(torch.get_num_threads())
    getattr(lib, f"src_backward_{suffix}")(steps, m, g_s.data_ptr(), h.data_ptr(), x.data_ptr(), params.alpha,
                                           params.rho, g_u.data_ptr(), g_b.data_ptr())
    return g_u, g_b.view(-1, n).sum(0)


def events_forward(spikes, weight_t):
    """``spikes @ weight_t`` for ``spikes`` ``(R, K)`` mostly zero and ``weight_t`` ``(K, N)``: cost ~ events x N."""
    suffix = _check(spikes, weight_t)
    lib = library()
    out = torch.empty(spikes.shape[0], weight_t.shape[1], dtype=spikes.dtype)
    lib.src_set_threads(torch.get_num_threads())
    getattr(lib, f"events_forward_{suffix}")(spikes.shape[0], spikes.shape[1], weight_t.shape[1], spikes.data_ptr(),
                                             weight_t.data_ptr(), out.data_ptr())
    return out


def events_backward(spikes, g_out):
    """``spikes.T @ g_out`` for ``spikes`` ``(R, K)`` mostly zero: the gradient of the transposed weight."""
    suffix = _check(spikes, g_out)
    lib = library()
    lib.src_set_threads(torch.get_num_threads())
    threads = getattr(lib, f"events_threads_{suffix}")()
    k, n = spikes.shape[1], g_out.shape[1]
    out = torch.empty(k, n, dtype=spikes.dtype)
    scratch = torch.empty(threads * k * n, dtype=spikes.dtype)
    getattr(lib, f"events_backward_{suffix}")(spikes.shape[0], k, n, spikes.data_ptr(), g_out.data_ptr(),
                                              out.data_ptr(), scratch.data_ptr())
    return out


def rate_encode(pixels, seeds, thresholds, n_steps, draw_bits, dtype):
    """The device's rate coder (:func:`quant.intencode.rate`) into a ``(T, B, K)`` tensor of ``dtype``."""
    lib = library()
    suffix = "f32" if dtype == torch.float32 else "f64"
    batch, k = pixels.shape
    out = torch.zeros(n_steps, batch, k, dtype=dtype)
    lib.src_set_threads(torch.get_num_threads())
    getattr(lib, f"rate_encode_{suffix}")(n_steps, batch, k, pixels.data_ptr(), seeds.data_ptr(),
                                          thresholds.data_ptr(), draw_bits, out.data_ptr())
    return out


if __name__ == "__main__":
    try:
        build(verbose=True)
    except KernelError as problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
