"""The general conv net's down- and upsampling forms on this backend: ms per train step.

  python benchmarks/convnet_forms.py [--rounds 10]

configs/conv_wide.py (batch 128, denoising) with each `decoder.upsample` ('nearest',
'subpixel', 'transpose') and `encoder.downsample` ('stride', 'maxpool'), each compiled once
and called in turn (benchmarks/timing.alternating_ms: the machine's drift falls on all
alike); one train step per jit call, as train.py runs conv models on the CPU. Prints the
median ms per step, the ratio to the preset, and the parameter count.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ae_jax import models  # pylint: disable=wrong-import-position
from ae_jax.data import pipeline as data
from ae_jax.training import steps
from benchmarks.dtype import _cpu_name  # pylint: disable=wrong-import-position
from benchmarks.timing import alternating_ms  # pylint: disable=wrong-import-position
from configs import conv_wide  # pylint: disable=wrong-import-position

FORMS = [("stride", "nearest"), ("stride", "subpixel"), ("stride", "transpose"),
         ("maxpool", "nearest")]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=10)
  args = parser.parse_args()
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))
  variants, sizes = {}, {}
  for down, up in FORMS:
    config = conv_wide.get_config()
    config.encoder.downsample, config.decoder.upsample = down, up
    model = models.from_config(config, (28, 28, 1))
    state = steps.create_train_state(model, config, (28, 28, 1))
    sizes[(down, up)] = sum(x.size for x in jax.tree.leaves(state.params))
    kw = dict(num_steps=1, batch_size=128, seed=0, loc=0.5, scale=0.1, loss_kind="bce")
    variants[(down, up)] = [
        lambda s, i, kw=kw: steps.device_train_steps(s, images, perm, jnp.int32(i % 400), **kw),
        state]
  times, _ = alternating_ms(variants, lambda fn, state, i: fn(state, i), args.rounds)
  base = float(np.median(times[FORMS[0]]))
  print(f"machine: {_cpu_name()}, {os.cpu_count()} cores, jax {jax.__version__} on "
        f"{jax.default_backend()}; configs/conv_wide.py, batch 128, {args.rounds} rounds")
  print("| downsample | upsample | ms/step (median) | vs preset | params |")
  print("|---|---|---|---|---|")
  for form in FORMS:
    ms = float(np.median(times[form]))
    print(f"| {form[0]} | {form[1]} | {ms:.1f} | {ms / base:.2f} | {sizes[form]:,} |")


if __name__ == "__main__":
  main()
