"""The dense train step with its matmuls in OpenBLAS (an XLA FFI custom call), A/B against
ae_jax's, in one process.

  pip install scipy-openblas32       # OpenBLAS with headers, for building against
  python benchmarks/blas_ffi.py [--rounds 40] [--repeats 2]

`benchmarks/gemm_floor.py` found OpenBLAS (numpy's) doing the step's five products faster
than XLA:CPU's own GEMM here. This tries it inside the step: `ffi/sgemm.cc`, compiled with
g++ against `jax.ffi.include_dir()` and scipy-openblas32 into a temporary folder, is
registered with `jax.ffi.register_ffi_target`, and Flax's `nn.Dense` takes it through its
`dot_general` argument (with a custom VJP, so the backward products are OpenBLAS calls
too). Two forms:

- "OpenBLAS on XLA's threads": each product split in two by rows, one half on the calling
  thread, one on XLA:CPU's intra-op pool (`ffi::ThreadPool`), OpenBLAS single-threaded;
- "OpenBLAS, 1 thread per product": the same calls, not split.

Each variant is `steps.device_train_steps` compiled once (36 steps per call, batch 128,
random images resident in memory), calls alternating, as in `dense_variants.py`. Prints the
median and fastest ms per step and the ratio to ae_jax's form. Not part of ae_jax: the
results (different rounding, so the losses agree to 1e-5, checked) are in issue #4's notes.
"""
import argparse
import ctypes
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ae_jax import models  # noqa: E402
from ae_jax.data import pipeline as data
from ae_jax.training import steps, train
from benchmarks.timing import alternating_ms  # noqa: E402
from configs import dense  # noqa: E402

PER_CALL = train._steps_per_call(dense.get_config(), 468, "cpu")  # pylint: disable=protected-access
UNROLL = train._scan_unroll("cpu")  # pylint: disable=protected-access
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ffi", "sgemm.cc")


def build_library(out_dir: str) -> str:
  """Compiles ffi/sgemm.cc into out_dir; exits with one line if a tool is missing."""
  try:
    import scipy_openblas32  # pylint: disable=import-outside-toplevel
  except ImportError:
    sys.exit("error: needs OpenBLAS's headers: pip install scipy-openblas32")
  if shutil.which("g++") is None:
    sys.exit("error: needs a C++ compiler: apt install g++")
  lib_dir = scipy_openblas32.get_lib_dir()
  path = os.path.join(out_dir, "libae_sgemm.so")
  subprocess.run(["g++", "-O2", "-std=c++17", "-shared", "-fPIC", "-w",
                  f"-I{jax.ffi.include_dir()}", f"-I{scipy_openblas32.get_include_dir()}",
                  SOURCE, f"-L{lib_dir}", f"-l{scipy_openblas32.get_library()}",
                  f"-Wl,-rpath,{lib_dir}", "-o", path], check=True)
  return path


def blas_dot_general(target: str, split: bool):
  """A `dot_general` for nn.Dense ([B, in] x [in, out]) that calls the FFI target."""
  def sgemm(a, b, trans_a=False, trans_b=False):
    shape = (a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1])
    return jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, jnp.float32))(
        a, b, trans_a=trans_a, trans_b=trans_b, split=split)

  @jax.custom_vjp
  def matmul(x, w):
    return sgemm(x, w)

  def matmul_bwd(residuals, g):
    x, w = residuals
    return sgemm(g, w, trans_b=True), sgemm(x, g, trans_a=True)

  matmul.defvjp(lambda x, w: (sgemm(x, w), (x, w)), matmul_bwd)

  def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    del precision, preferred_element_type  # float32 throughout
    assert dimension_numbers == (((1,), (0,)), ((), ())), dimension_numbers
    return matmul(lhs, rhs)
  return dot_general


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=40)
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    lib = ctypes.cdll.LoadLibrary(build_library(tmp))
  jax.ffi.register_ffi_target("ae_sgemm", jax.ffi.pycapsule(lib.AeSgemm), platform="cpu")
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))

  def build(model):
    state = steps.create_train_state(model, dense.get_config(), (28, 28, 1))
    compiled = steps.device_train_steps.lower(
        state, images, perm, jnp.int32(0), num_steps=PER_CALL, batch_size=128, seed=0,
        loc=0.5, scale=0.0, loss_kind="bce", unroll=UNROLL).compile()
    steps.device_train_steps.clear_cache()
    return [compiled, state]

  plain_dense = nn.Dense
  variants = {"ae_jax (XLA's GEMM)": build(models.make_autoencoder("dense"))}
  for name, split in (("OpenBLAS on XLA's threads", True),
                      ("OpenBLAS, 1 thread per product", False)):
    nn.Dense = functools.partial(plain_dense, dot_general=blas_dot_general("ae_sgemm", split))
    try:
      variants[name] = build(models.make_autoencoder("dense"))
    finally:
      nn.Dense = plain_dense

  print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; dense train step, batch "
        f"128, {PER_CALL} steps per call; calls alternate, {args.rounds} each (after 3 "
        "warm-up calls); ms per step")
  print("\n| repeat | variant | median ms/step | fastest | ratio to ae_jax (medians) |")
  print("|---|---|---|---|---|")
  for repeat in range(1, args.repeats + 1):
    times, losses = alternating_ms(
        variants, lambda ex, state, r: ex(state, images, perm, jnp.int32(PER_CALL * (r % 13)),
                                          seed=0), args.rounds)
    last = [float(out["loss"][-1]) for out in losses.values()]
    assert max(last) / min(last) - 1 < 1e-5, last  # the same maths, other rounding
    base = np.median(times["ae_jax (XLA's GEMM)"])
    for name, t in times.items():
      print(f"| {repeat} | {name} | {np.median(t) / PER_CALL:.3f} | "
            f"{min(t) / PER_CALL:.3f} | {np.median(t) / base:.2f}x |")


if __name__ == "__main__":
  main()
