"""configs/vae.py's VAE in pythae 0.1.2 (PyTorch, CPU), trained by pythae's own pipeline: the
peer of benchmarks/vae_vs_pythae.py.

  python benchmarks/peers/pythae_vae.py --epochs 30
  python benchmarks/peers/pythae_vae.py --epochs 1 --train_images 256 --test_images 20 \
      --num_samples 10          # a smoke run (seconds)

pythae's `VAE` with a custom BaseEncoder / BaseDecoder of exactly ae_jax's architecture
(784-500 relu -> mean and log-variance heads of 20; 20-500 relu -> 784, then the sigmoid,
as pythae's 'bce' loss takes probabilities), weights drawn as Flax's defaults (truncated
LeCun normal, zero biases) so that the two start alike; `VAEConfig(reconstruction_loss=
"bce", latent_dim=20)`; `TrainingPipeline` with a `BaseTrainerConfig`: Adam 1e-3, batch
128, no scheduler, evaluation on the test split each epoch (as ae_jax's). The data: the
Fashion-MNIST IDX files (common.py), scaled to [0, 1], NCHW.

What pythae computes (its source, models/vae/vae_model.py, checked for 0.1.2):
  * loss: BCE summed over the 784 pixels per image + KL(q(z|x) || N(0, I)) summed over
    the latent dims, averaged over the batch: per image the -ELBO in nats, as ae_jax's
    `loss='bernoulli'` with `loss_weights.kl=1`. Its eval loss, the mean of the test
    batches' means (10 batches of 1000: the mean over images), is the one-draw -ELBO,
    the estimator of ae_jax's `val_elbo`.
  * `get_nll(data, n_samples=1, batch_size=100)`: for each image, max(n_samples,
    batch_size) draws when n_samples <= batch_size (so 100 by default), else
    n_samples // batch_size batches of batch_size draws; log p(x) = logsumexp(log w) - log
    K. With n_samples=200, batch_size=100 that is K = 200 importance samples, as
    ae_jax.evaluation.likelihood's default. It returns the mean over images only, so it is called
    once per image here (the same loop and draws in the same order as one call) to give
    the standard error as well.
  * the trainer walks a shuffled DataLoader over the whole train split, the last batch
    short (469 steps of which one of 96 images; ae_jax: 468 whole batches), and keeps the
    epoch with the best eval loss as its saved model; the figures here are the model after
    the last epoch (`trainer.model`), as ae_jax's last checkpoint.

Seconds per epoch: pythae's train_step alone (a TrainingCallback's on_train_step_begin to
on_eval_step_begin; the evaluation excluded), median of the epochs after the first.
Reconstruction PSNR: from the posterior mean (decoder(mean of q(z|x))), per image, averaged
(common.psnr_db, the same function as the ae_jax runner's). Peak RSS: after training
(`peak_rss_train_mb`) and at the end, the NLL included (`peak_rss_mb`). Prints one JSON line.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (starts the process clock)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pythae.models import VAE, VAEConfig  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseDecoder, BaseEncoder  # noqa: E402
from pythae.pipelines import TrainingPipeline  # noqa: E402
from pythae.trainers import BaseTrainerConfig  # noqa: E402
from pythae.trainers.training_callbacks import TrainingCallback  # noqa: E402

HIDDEN, LATENT_DIM, PIXELS = 500, 20, 784  # configs/vae.py
NUM_SAMPLES = 200  # ae_jax.evaluation.likelihood.NUM_SAMPLES
NLL_BATCH = 100  # get_nll's default batch_size: K = 200 is two batches of 100 draws


class Encoder(BaseEncoder):
  """784 -> Linear(500) + relu -> `embedding` (mean) and `log_covariance` (log-variance)."""

  def __init__(self):
    BaseEncoder.__init__(self)
    self.hidden = nn.Linear(PIXELS, HIDDEN)
    self.mean = nn.Linear(HIDDEN, LATENT_DIM)
    self.logvar = nn.Linear(HIDDEN, LATENT_DIM)

  def forward(self, x: torch.Tensor) -> ModelOutput:
    h = torch.relu(self.hidden(x.reshape(x.shape[0], -1)))
    return ModelOutput(embedding=self.mean(h), log_covariance=self.logvar(h))


class Decoder(BaseDecoder):
  """20 -> Linear(500) + relu -> Linear(784) -> sigmoid, as [N, 1, 28, 28] `reconstruction`."""

  def __init__(self):
    BaseDecoder.__init__(self)
    self.hidden = nn.Linear(LATENT_DIM, HIDDEN)
    self.out = nn.Linear(HIDDEN, PIXELS)

  def forward(self, z: torch.Tensor) -> ModelOutput:
    logits = self.out(torch.relu(self.hidden(z)))
    return ModelOutput(reconstruction=torch.sigmoid(logits).reshape(-1, 1, 28, 28))


def flax_init(module: nn.Module) -> None:
  """Flax's nn.Dense defaults: kernel lecun_normal (a normal truncated at +-2 sd, rescaled
  to variance 1/fan_in), bias zeros."""
  for m in module.modules():
    if isinstance(m, nn.Linear):
      sd = math.sqrt(1.0 / m.in_features) / 0.87962566103423978
      nn.init.trunc_normal_(m.weight, std=sd, a=-2 * sd, b=2 * sd)
      nn.init.zeros_(m.bias)


class EpochTimer(TrainingCallback):
  """Times each epoch's train_step (from its start to the start of the evaluation that
  follows it), the first step, and keeps each epoch's eval loss."""

  def __init__(self):
    self.epoch_seconds, self.eval_losses = [], []
    self.first_step_seconds = self._t0 = None

  def on_train_step_begin(self, training_config, **kwargs):  # once per epoch
    self._t0 = time.perf_counter()

  def on_train_step_end(self, training_config, **kwargs):  # after every batch
    if self.first_step_seconds is None:
      self.first_step_seconds = common.since_start()

  def on_eval_step_begin(self, training_config, **kwargs):  # once per epoch
    self.epoch_seconds.append(time.perf_counter() - self._t0)

  def on_log(self, training_config, logs, **kwargs):
    if "eval_epoch_loss" in logs:
      self.eval_losses.append(float(logs["eval_epoch_loss"]))


@torch.no_grad()
def nll_per_image(model: VAE, x: torch.Tensor, num_samples: int) -> np.ndarray:
  """-log p(x) of each image by pythae's own get_nll (K = num_samples draws)."""
  model.eval()
  batch = min(num_samples, NLL_BATCH)
  if num_samples % batch:
    raise SystemExit(f"--num_samples {num_samples}: get_nll draws whole batches of {batch}")
  return np.array([-model.get_nll(x[i:i + 1], n_samples=num_samples, batch_size=batch)
                   for i in range(len(x))])


@torch.no_grad()
def posterior_mean_reconstructions(model: VAE, x: torch.Tensor) -> np.ndarray:
  """decoder(mean of q(z|x)) in [0, 1], NHWC like the ae_jax runner's."""
  model.eval()
  out = [model.decoder(model.encoder(x[i:i + 1000]).embedding).reconstruction
         for i in range(0, len(x), 1000)]
  return torch.cat(out).numpy().transpose(0, 2, 3, 1)


def parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--threads", type=int, default=None,
                      help="torch.set_num_threads (default: PyTorch's own, the cores)")
  parser.add_argument("--num_samples", type=int, default=NUM_SAMPLES,
                      help=f"importance samples K per image for the NLL (default {NUM_SAMPLES})")
  parser.add_argument("--train_images", type=int, default=None,
                      help="only the first N train images (smoke runs)")
  parser.add_argument("--test_images", type=int, default=None,
                      help="only the first N test images (smoke runs)")
  return parser.parse_args()


def main() -> None:
  args = parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  data = common.load_fashion_mnist()
  x_train = data["x_train"][:args.train_images].transpose(0, 3, 1, 2)  # NCHW
  x_test = data["x_test"][:args.test_images].transpose(0, 3, 1, 2)
  del data
  encoder, decoder = Encoder(), Decoder()
  flax_init(encoder)
  flax_init(decoder)
  model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT_DIM,
                        reconstruction_loss="bce"), encoder=encoder, decoder=decoder)
  timer = EpochTimer()
  with tempfile.TemporaryDirectory(prefix="pythae_vae_") as tmp:
    config = BaseTrainerConfig(
        output_dir=tmp, num_epochs=args.epochs, learning_rate=common.LEARNING_RATE,
        per_device_train_batch_size=common.BATCH_SIZE,
        per_device_eval_batch_size=common.EVAL_BATCH_SIZE, optimizer_cls="Adam",
        scheduler_cls=None, seed=args.seed, no_cuda=True)
    setup_seconds = common.since_start()
    pipeline = TrainingPipeline(model=model, training_config=config)
    pipeline(train_data=x_train, eval_data=x_test, callbacks=[timer])
  trained = pipeline.trainer.model  # the last epoch's, as ae_jax's last checkpoint
  peak_rss_train_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  steps = len(pipeline.trainer.train_loader)

  test = torch.from_numpy(np.ascontiguousarray(x_test))
  t0 = time.perf_counter()
  nll = nll_per_image(trained, test, args.num_samples)
  nll_seconds = time.perf_counter() - t0
  psnr = common.psnr_db(posterior_mean_reconstructions(trained, test), x_test.transpose(0, 2, 3, 1))
  later = timer.epoch_seconds[1:] or timer.epoch_seconds
  common.emit({
      "framework": "pythae", "model": "vae", "epochs": len(timer.epoch_seconds),
      "steps_per_epoch": steps, "threads": torch.get_num_threads(),
      "num_params": sum(p.numel() for p in trained.parameters()),
      "epoch_seconds": [round(s, 4) for s in timer.epoch_seconds],
      "seconds_per_epoch": statistics.median(later),
      "first_step_seconds": timer.first_step_seconds, "setup_seconds": setup_seconds,
      "neg_elbo": timer.eval_losses[-1], "val_neg_elbo_per_epoch": timer.eval_losses,
      **common.mean_and_se("nll", nll), "num_samples": args.num_samples,
      "nll_seconds": nll_seconds, "psnr_db": psnr, "psnr_from": "posterior mean",
      "test_images": len(x_test), 
      "test_u8_sum": int(np.rint(x_test * 255.0).astype(np.int64).sum()),
      "peak_rss_train_mb": peak_rss_train_mb,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "process_seconds": common.since_start()})


if __name__ == "__main__":
  main()
