"""float32 vs bfloat16 compute (config.dtype) on this machine: train-step time and loss.

  python benchmarks/dtype.py                       # all models, 1 epoch of real data each
  python benchmarks/dtype.py --models dense conv_wide --epochs 2

Part 1 times `steps.device_train_steps` as train.py calls it on this backend (steps per jit
call and unroll as `train._steps_per_call` / `_scan_unroll` choose), float32 and bfloat16
compiled once each and called in turn (`alternating_ms`), so the machine's
drift falls on both alike: median ms per step, and the ratio. Part 2 trains each model for
--epochs with each dtype (`train_and_evaluate`, Fashion-MNIST from Debian's IDX files, the
same seed; the tfds copy in tfds' default folder, or AE_JAX_BENCH_DATA_DIR as for the peers)
and reports the final val BCE and PSNR. Parameters and Adam's state are float32
in both; only the layers' compute dtype changes. The table goes to stdout.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ae_jax import models  # pylint: disable=wrong-import-position
from ae_jax.data import pipeline as data
from ae_jax.training import steps, train

CONFIGS = ("dense", "conv", "deep", "sparse", "conv_wide")


def alternating_ms(variants: dict, call, calls: int, warmup: int = 3):
  """Times `call(compiled, state, i)` for each variant in turn, `calls` rounds after
  `warmup`, so that the machine's drift falls on all variants alike.

  `variants` maps a name to [compiled, state]; each call's new state replaces the old one
  in place, so the variants carry on from one use to the next. Returns the milliseconds
  of each call (name -> list) and each variant's last output (name -> output).
  """
  times = {name: [] for name in variants}
  last = {}
  for i in range(calls + warmup):
    for name, variant in variants.items():
      t0 = time.perf_counter()
      variant[1], out = call(variant[0], variant[1], i)
      jax.block_until_ready(out)
      if i >= warmup:
        times[name].append((time.perf_counter() - t0) * 1000)
      last[name] = out
  return times, last


def _config(name: str, dtype: str):
  import importlib  # pylint: disable=import-outside-toplevel
  config = importlib.import_module(f"configs.{name}").get_config()
  config.dtype = dtype
  config.progress_bar = False
  if os.environ.get("AE_JAX_BENCH_DATA_DIR"):  # as the peers' ae_jax runners: a tfds copy
    config.data_dir = os.path.expanduser(os.environ["AE_JAX_BENCH_DATA_DIR"])  # elsewhere
  return config


def step_ms(name: str, images, rounds: int) -> dict:
  per_call = train._steps_per_call(_config(name, "float32"), 468, jax.default_backend())  # pylint: disable=protected-access
  variants = {}
  for dtype in ("float32", "bfloat16"):
    config = _config(name, dtype)
    model = models.from_config(config, (28, 28, 1))
    state = steps.create_train_state(model, config, (28, 28, 1))
    kw = dict(num_steps=per_call, batch_size=config.batch_size, seed=0, loc=config.noise.loc,
              scale=config.noise.scale, loss_kind=config.loss,
              unroll=train._scan_unroll(jax.default_backend()),  # pylint: disable=protected-access
              weights=tuple(sorted(config.loss_weights.items())))
    fn = lambda s, i, kw=kw: steps.device_train_steps(s, images, PERM, jnp.int32(i % 400), **kw)
    variants[dtype] = [fn, state]
  times, _ = alternating_ms(variants, lambda fn, state, i: fn(state, i), rounds)
  return {d: float(np.median(t)) / per_call for d, t in times.items()}


def final_loss(name: str, dtype: str, epochs: int, root: str) -> dict:
  config = _config(name, dtype)
  config.num_epochs = epochs
  workdir = os.path.join(root, f"{name}-{dtype}")
  train.train_and_evaluate(config, workdir)
  row = train.workdir_lib.MetricsLog(workdir, enabled=False).rows()[-1]
  return {"val_bce": row["val_bce"], "val_psnr": row["val_psnr"]}


def _cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    return platform.machine()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=CONFIGS)
  parser.add_argument("--epochs", type=int, default=1)
  parser.add_argument("--rounds", type=int, default=20, help="timed calls per dtype")
  args = parser.parse_args()
  global PERM  # pylint: disable=global-statement
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  PERM = jnp.asarray(data.epoch_permutation(0, 0, 60000))
  print(f"machine: {_cpu_name()}, {os.cpu_count()} cores, "
        f"jax {jax.__version__} on {jax.default_backend()}")
  print("| model | float32 ms/step | bfloat16 ms/step | bf16 / f32 | "
        f"val BCE f32 | val BCE bf16 | PSNR f32 | PSNR bf16 ({args.epochs} epoch(s)) |")
  print("|---|---|---|---|---|---|---|---|")
  with tempfile.TemporaryDirectory() as root:
    for name in args.models:
      ms = step_ms(name, images, args.rounds)
      f32, bf16 = (final_loss(name, d, args.epochs, root) for d in ("float32", "bfloat16"))
      print(f"| {name} | {ms['float32']:.2f} | {ms['bfloat16']:.2f} | "
            f"{ms['bfloat16'] / ms['float32']:.2f} | {f32['val_bce']:.5f} | "
            f"{bf16['val_bce']:.5f} | {f32['val_psnr']:.2f} | {bf16['val_psnr']:.2f} |",
            flush=True)


PERM = None

if __name__ == "__main__":
  main()
