"""The C kernels' library: loading it leaves the process's floating point as it was."""

import subprocess
import sys

import pytest

from quant import kernels

PROBE = """
import numpy as np
from quant import kernels
tiny = np.float64(2.2250738585072014e-308)          # the smallest normal float64
assert tiny / 2 > 0, "subnormals work before"
kernels.library()
print(repr(float(np.float64(tiny) / np.float64(2))), repr(float(np.float32(1.1754944e-38) / np.float32(2))))
"""


def test_loading_the_kernels_keeps_subnormal_floats():
    """Regression: linked with -ffast-math, the library turned on flush-to-zero for the whole process
    (GCC's crtfastmath.o), and hypothesis then refused to run any later float test."""
    if not kernels.available():
        pytest.skip("no C compiler here: nothing is loaded")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) == 2.2250738585072014e-308 / 2 and float(out[1]) > 0
