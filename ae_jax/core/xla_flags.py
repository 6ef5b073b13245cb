"""XLA:CPU compiler defaults ae_jax sets before JAX starts (measured, not guessed).

jaxlib 0.10 hands reductions on the CPU to YNNPACK fusions by default. For ae_jax's
dense train step that costs ~1.6x the time (2.05-2.26 -> 0.98-1.48 ms per step at batch
128 on the 2-core AVX2 dev machine, docs/performance.md; benchmarks/dense_ops.py, removed,
read it at commit 83c9b83), so ae_jax turns them off with
`--xla_cpu_experimental_ynn_fusion_type=` (an empty list: XLA's own emitters do the work;
results equal to float rounding). The flag only concerns the CPU backend. The same list
also holds jaxlib 0.10's YNNPACK convolutions (`LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION`),
which the empty list turns off too, in favour of XLA's Eigen convolutions: with YNNPACK's,
conv_wide's and the VQ-VAE's train steps took 1.27-1.34x as long, the lecture conv's
0.95-0.97x (its kernel-gradient convolutions are the slow part; docs/performance.md,
`python benchmarks/step_forms.py --forms preset,ynn_conv`, which sets it per compile).

Applied when `ae_jax` is imported, before JAX creates its backends (later it has no
effect), and only to jaxlib versions known to have the flag (an unknown flag would abort
XLA). A user's own setting of the flag in XLA_FLAGS is kept; AE_JAX_KEEP_XLA_FLAGS=1
leaves XLA_FLAGS untouched.

`quick_compile_cpu_options` are per-computation options (jit's `compiler_options`) for code
that runs once, used by steps.QUICK_COMPILE.
"""
from __future__ import annotations

import importlib.metadata
import os

FLAG = "--xla_cpu_experimental_ynn_fusion_type"
# (major, minor) where the flag was measured. Later versions may well know it too (public
# code sets it for 0.11.2), but an unknown flag aborts XLA, so only what was run here.
TESTED_JAXLIB = ((0, 10),)


def _jaxlib_version() -> tuple[int, int] | None:
  try:
    major, minor = importlib.metadata.version("jaxlib").split(".")[:2]
    return int(major), int(minor)
  except (importlib.metadata.PackageNotFoundError, ValueError):
    return None


def with_cpu_defaults(xla_flags: str, jaxlib_version: tuple[int, int] | None) -> str:
  """`xla_flags` with ae_jax's CPU defaults appended, unless already set or not supported."""
  if jaxlib_version not in TESTED_JAXLIB or FLAG in xla_flags:
    return xla_flags
  return f"{xla_flags} {FLAG}=".strip()


def apply_cpu_defaults() -> None:
  if os.environ.get("AE_JAX_KEEP_XLA_FLAGS") == "1":
    return
  os.environ["XLA_FLAGS"] = with_cpu_defaults(os.environ.get("XLA_FLAGS", ""),
                                              _jaxlib_version())


def quick_compile_cpu_options(jaxlib_version: tuple[int, int] | None = None) -> dict:
  """XLA:CPU options for the init's compile, on jaxlib versions where they were measured.

  XLA:CPU's older loop emitters (`xla_cpu_use_fusion_emitters=False`) compile the conv
  model's init in 1.01 s instead of 1.28 s at level 1 alone (medians of 5,
  benchmarks/results/20261128-init_compile.txt), with the same parameters bit for bit
  (tests/test_train.py). Not used for the train step, which they made slower and rounded
  differently (tried). Other backends ignore xla_cpu_ options; an option a jaxlib does not
  know would fail the compile, hence the version check.
  """
  version = _jaxlib_version() if jaxlib_version is None else jaxlib_version
  return {"xla_cpu_use_fusion_emitters": False} if version in TESTED_JAXLIB else {}
