"""A VAE's negative log-likelihood on the test split, estimated by importance sampling.

    python -m ae_jax.likelihood --workdir runs/vae [--num_samples 200] [--max_images N]

For each image x, K draws z_k from the encoder's q(z|x) give the weights
log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), and
    -log p(x) ~ -log (1/K sum_k w_k)      (the IWAE bound of Burda et al. 2016: an upper
                                           bound of the NLL that tightens as K grows)
    -ELBO     ~ -(1/K) sum_k log w_k      (the same draws; never below the IWAE bound).
Both are in nats per image, averaged over the images, with their standard errors over
images. p(x|z) is the run's likelihood (`loss`: 'bernoulli' or 'gaussian'), p(z) the
encoder's prior (N(0, I), or a learned one: `log_prior`, ae_jax/models/vae.py).
K = 200 by default: pythae's reproduced VAE NLL on binary MNIST (89.78 nats, its
reproducibility table) is "NLL (200 IS)" (its `get_nll` itself defaults to n_samples=1,
batch_size=100 and then draws batch_size samples).

Restores both halves of the run; any encoder with a `posterior(x) -> (mean, logvar)` method
(ae_jax/models/vae.py) qualifies.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Sequence

import numpy as np

from ae_jax.core import cli
from ae_jax.compression import compress
from ae_jax.core.errors import UserError, run_cli
from ae_jax.training import runs

NUM_SAMPLES = 200


def check_vae_run(cfg: dict, workdir: str, need_likelihood: bool = True) -> None:
  """Refuses, in one line, a run whose encoder gives no q(z|x) or whose loss is not a
  likelihood."""
  from ae_jax.core import metrics  # pylint: disable=import-outside-toplevel
  from ae_jax import models
  name = cfg["encoder"]["name"]
  if not models.vae.is_gaussian_encoder(models.registry.resolve(name, "encoder")):
    raise UserError(f"{workdir} is not a VAE run: its encoder {name!r} gives no q(z|x) (a "
                    "`posterior` method); train one with configs/vae.py")
  if need_likelihood and cfg["loss"] not in metrics.LIKELIHOODS:
    raise UserError(f"{workdir} was trained with loss {cfg['loss']!r}, a mean per pixel, not "
                    f"a likelihood: train with --config.loss=bernoulli or gaussian")


def _log_weights_fn(model, loss_kind: str, num_samples: int):
  """jit(variables, x [B, ...], key) -> log w [K, B]."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.core import metrics  # pylint: disable=import-outside-toplevel
  from ae_jax.models import vae  # pylint: disable=import-outside-toplevel

  def log_weights(variables, x, key):
    enc = {"params": variables["params"]["encoder"]}
    dec = {"params": variables["params"]["decoder"]}
    mean, logvar = model.encoder.apply(enc, x, method="posterior")
    eps = jax.random.normal(key, (num_samples, *mean.shape), jnp.float32)
    z_KxBxD = mean + jnp.exp(0.5 * logvar) * eps
    logits = model.decoder.apply(dec, z_KxBxD.reshape(-1, mean.shape[-1]))
    logits = logits.astype(jnp.float32).reshape(num_samples, *x.shape)
    x_k = jnp.broadcast_to(x, logits.shape)
    log_px_z = -metrics.reconstruction_loss(
        loss_kind, logits.reshape(-1, *x.shape[1:]), x_k.reshape(-1, *x.shape[1:]))
    # The encoder's own prior: N(0, I), or a learned one (a VampPrior's mixture).
    # (an encoder with `posterior` alone: N(0, I)).
    if hasattr(model.encoder, "log_prior"):
      log_pz = model.encoder.apply(enc, z_KxBxD.reshape(-1, mean.shape[-1]),
                                   method="log_prior").reshape(num_samples, -1)
    else:
      log_pz = vae.log_normal(z_KxBxD, jnp.zeros_like(mean), jnp.zeros_like(mean))
    return (log_px_z.reshape(num_samples, -1) + log_pz
            - vae.log_normal(z_KxBxD, mean, logvar))

  return jax.jit(log_weights)


def estimate(workdir: str, num_samples: int = NUM_SAMPLES, batch_size: int = 50,
             max_images: int | None = None, seed: int = 0, split: str | None = None,
             data_dir: str | None = None, idx_dir: str | None = None,
             images_u8: np.ndarray | None = None) -> dict:
  """{'nll', 'nll_se', 'neg_elbo', 'neg_elbo_se', 'num_images', 'num_samples', 'run'} of
  the run's latest checkpoint on its eval split (or `split`, or the given uint8 images):
  per-image nats, mean and standard error over images. The draws are a function of `seed`
  and the batch: a rerun gives the same numbers."""
  if not (isinstance(num_samples, int) and num_samples >= 1):
    raise UserError(f"--num_samples must be a positive integer, not {num_samples!r}")
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline as data
  cfg = checkpoint.read_run_config(workdir)
  check_vae_run(cfg, workdir)
  run = runs.run_identity(workdir)
  if images_u8 is None:
    builder = runs.run_dataset(cfg, data_dir, idx_dir)
    data.num_examples(builder, split or cfg["eval_split"], flag="--split")
    images_u8 = data.load_images(builder, split or cfg["eval_split"], max_images)
  images_u8 = runs.run_images(images_u8[:max_images], tuple(cfg["image_shape"]),
                              f"the images for {workdir}")
  runs.check_images(images_u8, tuple(cfg["image_shape"]), f"the images for {workdir}")
  import jax  # pylint: disable=import-outside-toplevel
  model, variables = checkpoint.restore_autoencoder(workdir, run["step"])
  log_weights = _log_weights_fn(model, cfg["loss"], num_samples)
  nll, neg_elbo = [], []
  for b, start in enumerate(range(0, len(images_u8), batch_size)):
    x = images_u8[start:start + batch_size]
    n = len(x)
    x = np.pad(x, ((0, batch_size - n),) + ((0, 0),) * (x.ndim - 1))  # one compiled shape
    key = jax.random.fold_in(jax.random.key(seed), b)
    lw = np.asarray(log_weights(variables, x.astype(np.float32) / 255.0, key), np.float64)[:, :n]
    m = lw.max(axis=0)
    nll.append(-(m + np.log(np.exp(lw - m).mean(axis=0))))
    neg_elbo.append(-lw.mean(axis=0))
  nll, neg_elbo = np.concatenate(nll), np.concatenate(neg_elbo)
  se = lambda v: float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
  return {"nll": float(nll.mean()), "nll_se": se(nll), "neg_elbo": float(neg_elbo.mean()),
          "neg_elbo_se": se(neg_elbo), "num_images": len(nll), "num_samples": num_samples,
          "run": runs.run_summary(workdir, run["step"])}


def table(result: dict) -> str:
  k = result["num_samples"]
  return "\n".join([
      f"{result['run']}: {result['num_images']} images, K = {k} importance samples each",
      "",
      "| estimate | nats per image | standard error |",
      "|---|---|---|",
      f"| -ELBO (mean of the K single-sample bounds) | {result['neg_elbo']:.2f} | "
      f"{result['neg_elbo_se']:.2f} |",
      f"| NLL (IWAE bound, K = {k}) | {result['nll']:.2f} | {result['nll_se']:.2f} |"])


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.likelihood",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained VAE run")
  parser.add_argument("--num_samples", type=cli.positive_int, default=NUM_SAMPLES,
                      help=f"importance samples K per image (default {NUM_SAMPLES})")
  parser.add_argument("--batch_size", type=cli.positive_int, default=50,
                      help="images per jit call (each with K draws; default 50)")
  parser.add_argument("--max_images", type=cli.positive_int,
                      help="only the first N images of the split")
  parser.add_argument("--split", help="tfds split (default: the run's eval split)")
  parser.add_argument("--seed", type=int, default=0, help="of the draws (default 0)")
  cli.add_run_data_flags(parser)
  args = parser.parse_args(argv)
  cli.quiet_logs()
  return run_cli(lambda: table(estimate(args.workdir, args.num_samples, args.batch_size,
                                        args.max_images, args.seed, args.split,
                                        args.data_dir, args.idx_dir)))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
