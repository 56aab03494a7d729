"""Another CPU code path on the same machine: what a reader with a different CPU would compute.

PyTorch picks its vectorised kernels at start-up from the CPU's instruction sets (``ATEN_CPU_CAPABILITY``), MKL its
matrix-multiply kernels (``MKL_CBWR``), oneDNN its convolution and matmul kernels (``ONEDNN_MAX_CPU_ISA``) and
OpenBLAS, which NumPy and SciPy use, its own (``OPENBLAS_CORETYPE``). Each choice changes the last digits of sums,
and training turns those into other results. Setting these variables before Python starts moves every library to
an older instruction set, as on an older or a different CPU.

``python -m booktools.cpu_paths`` prints ``VAR=value`` pairs for the path that differs from this machine's native
one (empty on a machine where no other path is known, such as Apple arm64), for ``env $(...) command``.
"""

from __future__ import annotations

import subprocess
import sys

#: The alternative paths, by the capability PyTorch reports natively. AVX-512 machines fall back to AVX2 (the
#: common laptop path); AVX2 machines fall back to the baseline x86-64 path (SSE4.1), which is slower.
ALTERNATIVES = {
    "AVX512": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
               "OPENBLAS_CORETYPE": "Haswell"},
    "AVX2": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41",
             "OPENBLAS_CORETYPE": "Nehalem"},
}
#: What PyTorch must report under each alternative, to prove the variables took effect.
EXPECTED = {"avx2": "AVX2", "default": "DEFAULT"}


def capability(env: dict[str, str] | None = None, python: str = sys.executable) -> str:
    """The CPU capability PyTorch reports in a fresh interpreter with ``env`` added to the environment."""
    import os

    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    result = subprocess.run([python, "-c", code], env={**os.environ, **(env or {})}, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip()


def alternative(native: str) -> dict[str, str]:
    """The environment variables of the other path for a machine whose native capability is ``native``."""
    return dict(ALTERNATIVES.get(native.upper(), {}))


def main() -> int:
    native = capability()
    env = alternative(native)
    if env:
        reached = capability(env)
        expected = EXPECTED[env["ATEN_CPU_CAPABILITY"]]
        if reached != expected:
            print(f"cpu_paths: asked PyTorch for {expected} but it reports {reached}", file=sys.stderr)
            return 1
    print(" ".join(f"{key}={value}" for key, value in env.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
