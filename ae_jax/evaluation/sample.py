"""Images a generative autoencoder makes: its decoder on draws from its prior: N(0, I) for
a VAE (and the N(0, I) a WAE or adversarial autoencoder pulls its codes to), the learned
prior of its encoder (a VampPrior: the posterior at a pseudo-input), or, for an RAE (or any
run with --ex_post), a Gaussian mixture fitted to the training split's codes, stored beside
the run (ae_jax/evaluation/density.py).

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


def prior_kind(cfg: dict, ex_post: bool = False) -> str:
  """Where a run's codes are drawn from: 'normal' (a Gaussian encoder's N(0, I)),
  'encoder' (the encoder's own `sample_prior`: a VampPrior, the N(0, I) a WAE or an
  adversarial autoencoder pulls its codes to), 'ex_post' (a Gaussian mixture fitted to the
  training codes: an RAE's, or any run's with `ex_post`); a run with none is refused."""
  from ae_jax.models import priors, registry, vae  # pylint: disable=import-outside-toplevel
  name = cfg["encoder"]["name"]
  cls = registry.resolve(name, "encoder")
  if runs.is_vq_run(cfg) or runs.has_prior(cfg):
    raise UserError(f"{cfg.get('_workdir', 'the run')}'s encoder {name!r} gives integer "
                    "codes: sampling needs a continuous code (a VAE, WAE, RAE, ...)")
  if ex_post or getattr(cls, "EX_POST_DENSITY", False):
    return "ex_post"
  if vae.is_gaussian_encoder(cls) and priors.is_standard_normal(cfg["encoder"].get("prior")):
    return "normal"
  if callable(getattr(cls, "sample_prior", None)):
    return "encoder"
  raise UserError(f"{cfg.get('_workdir', 'the run')} has no prior to sample from: its "
                  f"encoder {name!r} is deterministic; train a generative one (configs/vae.py, "
                  "configs/rae.py, ...), or pass --ex_post to fit a Gaussian mixture to its "
                  "codes")


def _train_codes(workdir: str, cfg: dict, step: int) -> np.ndarray:
  """The deterministic codes (no 'sample' stream) of the run's training split, [N, D]."""
  import jax  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  images = data.load_images(runs.run_dataset(cfg), cfg["train_split"])
  encoder, variables = checkpoint.restore_encoder(workdir, step)
  encode = jax.jit(lambda v, x: encoder.apply(v, x.astype(np.float32) / 255.0))
  out = [np.asarray(encode(variables, images[i:i + 1000])) for i in range(0, len(images), 1000)]
  return np.concatenate(out).reshape(len(images), -1)


def generate(workdir: str, num: int = 64, seed: int = 0, manifold: bool = False,
             size: int = 15, ex_post: bool = False) -> np.ndarray:
  """Images [N, H, W, C] in [0, 1] decoded from prior draws (or the manifold's codes)."""
  import jax  # pylint: disable=import-outside-toplevel
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  from ae_jax.evaluation import density
  from ae_jax import models
  cfg = checkpoint.read_run_config(workdir)
  kind = prior_kind({**cfg, "_workdir": workdir}, ex_post)
  run = runs.run_identity(workdir)
  step = run["step"]
  model = models.from_config(cfg, cfg["image_shape"])
  code = models.code_shape(model.encoder, cfg["image_shape"])
  if manifold:
    if code != (2,):
      raise UserError(f"--manifold needs a 2-dim code; {workdir}'s is {code}: train with "
                      "--config.encoder.latent_dim=2, or leave --manifold out")
    z = manifold_codes(size)
  elif kind == "normal":
    z = np.asarray(jax.random.normal(jax.random.key(seed), (num, *code)))
  elif kind == "encoder":  # a learned prior (a VampPrior's pseudo-inputs), or the WAE's
    encoder, enc_vars = checkpoint.restore_encoder(workdir, step)
    z = np.asarray(jax.jit(lambda v, key: encoder.apply(v, key, num, method="sample_prior"))(
        enc_vars, jax.random.key(seed)))
  else:  # the ex-post density, fitted once per checkpoint and stored beside the run
    gmm = density.load_or_fit(workdir, run, lambda: _train_codes(workdir, cfg, step))
    z = density.sample_gmm(gmm, num, seed).reshape(num, *code)
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
  parser.add_argument("--ex_post", action="store_true",
                      help="draw from a Gaussian mixture fitted to the training codes (an "
                      "RAE's default; stored beside the run)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> str:
    files.check_output_path(args.out, args.overwrite, "--out")
    images = generate(args.workdir, args.num, args.seed, args.manifold,
                      ex_post=args.ex_post)
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
