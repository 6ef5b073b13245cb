"""What one evaluation costs: SSIM's Gaussian blur forms and the whole eval pass.

  python benchmarks/eval_ops.py

Times (median ms of 5 rounds, benchmarks/timing.py) dm-pix's SSIM with its own blur
(vmapped 1D `jnp.convolve`) and with ae_jax's (`metrics._gaussian_blur`: products with
band matrices) on 1000 random 28x28x1 images, their largest difference, and
`train.evaluate` of the dense model over 10,000 images (the per-epoch validation of
configs/dense.py, eval batch 1000) with each SSIM.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dm_pix  # pylint: disable=wrong-import-position
import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from benchmarks.timing import median_ms  # pylint: disable=wrong-import-position
from ae_jax.core import metrics  # pylint: disable=wrong-import-position
from ae_jax import models
from ae_jax.training import parallel, steps, train
from configs import dense  # pylint: disable=wrong-import-position


def main():
  rng = np.random.default_rng(0)
  a = rng.random((1000, 28, 28, 1), np.float32)
  b = np.clip(a + 0.1 * rng.standard_normal(a.shape, np.float32), 0, 1)
  forms = {"dm-pix's blur (1D convolve)": lambda x, y: dm_pix.ssim(x, y, max_val=1.0),
           "ae_jax: band-matrix products": metrics.ssim}
  values = {name: jax.jit(fn)(a, b) for name, fn in forms.items()}
  print(f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPUs; SSIM of 1000 28x28x1 images")
  print("| SSIM form | ms per 1000 images |\n|---|---|")
  for name, fn in forms.items():
    print(f"| {name} | {median_ms(jax.jit(fn), a, b):.1f} |")
  diff = np.abs(np.subtract(*values.values())).max()
  print(f"\nlargest difference between the two: {diff:.1e}\n")

  config = dense.get_config()
  state = steps.create_train_state(models.make_autoencoder("dense"), config, (28, 28, 1))
  images = rng.integers(0, 256, (10000, 28, 28, 1), np.uint8)
  mesh = parallel.make_mesh()
  print("| validation of the dense model, 10,000 images | ms |\n|---|---|")
  for name, fn in forms.items():
    metrics.ssim = fn  # evaluate() reaches SSIM through metrics.ssim
    steps.eval_step.clear_cache()
    ms = median_ms(lambda: train.evaluate(state, images, config, mesh), n=1)
    print(f"| with {name} | {ms:.0f} |")


if __name__ == "__main__":
  main()
