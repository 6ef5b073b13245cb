"""Images a VAE generates: its decoder on draws from the prior N(0, I).

    python -m ae_jax.sample --workdir runs/vae --out samples.png [--num 64] [--seed 0]
    python -m ae_jax.sample --workdir runs/vae2d --out manifold.png --manifold

--manifold (a 2-dim code only) decodes a 15x15 grid of codes at the prior's quantiles
(the inverse normal CDF of 0.05 ... 0.95 on each axis): the Keras blog's picture of the
learned manifold, the first code dimension along the columns, the second down the rows.
Only the run's decoder is restored.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
from typing import Sequence

import numpy as np

from ae_jax.core import cli, files
from ae_jax.compression import compress
from ae_jax.core.errors import UserError, run_cli, writing
from ae_jax.training import runs


def manifold_codes(size: int = 15) -> np.ndarray:
  """[size * size, 2] codes: row i, column j is (q_j, q_i), q = the N(0, 1) quantiles of
  linspace(0.05, 0.95, size)."""
  q = np.array([statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, size)],
               np.float32)
  return np.stack(np.meshgrid(q, q), axis=-1).reshape(-1, 2)


def generate(workdir: str, num: int = 64, seed: int = 0, manifold: bool = False,
             size: int = 15) -> np.ndarray:
  """Images [N, H, W, C] in [0, 1] decoded from prior draws (or the manifold's codes)."""
  import jax  # pylint: disable=import-outside-toplevel
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  from ae_jax.evaluation import likelihood
  from ae_jax import models
  cfg = checkpoint.read_run_config(workdir)
  likelihood.check_vae_run(cfg, workdir, need_likelihood=False)
  step = runs.run_identity(workdir)["step"]
  model = models.from_config(cfg, cfg["image_shape"])
  code = models.code_shape(model.encoder, cfg["image_shape"])
  if manifold:
    if code != (2,):
      raise UserError(f"--manifold needs a 2-dim code; {workdir}'s is {code}: train with "
                      "--config.encoder.latent_dim=2, or leave --manifold out")
    z = manifold_codes(size)
  else:
    z = np.asarray(jax.random.normal(jax.random.key(seed), (num, *code)))
  decoder, variables = checkpoint.restore_decoder(workdir, step)
  return np.asarray(jax.jit(lambda v, z: jax.nn.sigmoid(decoder.apply(v, z)))(variables, z))


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.sample",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained VAE run")
  parser.add_argument("--out", required=True, help="PNG file to write")
  parser.add_argument("--num", type=cli.positive_int, default=64,
                      help="images to draw (default 64, in rows of ceil(sqrt(num)))")
  parser.add_argument("--seed", type=int, default=0, help="of the prior draws (default 0)")
  parser.add_argument("--manifold", action="store_true",
                      help="a 15x15 grid over the prior's quantiles (2-dim codes only)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> str:
    files.check_output_path(args.out, args.overwrite, "--out")
    images = generate(args.workdir, args.num, args.seed, args.manifold)
    from ae_jax.core import plots  # pylint: disable=import-outside-toplevel
    columns = 15 if args.manifold else math.ceil(math.sqrt(len(images)))
    with writing(os.path.basename(args.out), os.path.dirname(os.path.abspath(args.out)),
                 "--out"):
      plots.save_image_grid(args.out, images, columns, pad=0 if args.manifold else 2)
    what = "the 15x15 manifold" if args.manifold else f"{len(images)} prior samples"
    return f"wrote {what} to {args.out}"
  return run_cli(work)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
