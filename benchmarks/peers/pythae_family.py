"""The research families' configs (configs/iwae.py, vamp.py, beta_tc_vae.py, wae.py, rae.py,
aae.py) in pythae 0.1.2 (PyTorch, CPU), trained by pythae's own pipeline and trainers: the
peers of the families' side-by-side (issue #31), as benchmarks/peers/pythae_vae.py is the
VAE's, whose architecture, initialization, data, timer and NLL it reuses.

  python benchmarks/peers/pythae_family.py --family iwae --epochs 30
  python benchmarks/peers/pythae_family.py --family rae --epochs 1 --train_images 256 \
      --test_images 20 --num_samples 10          # a smoke run (seconds)

The same networks as ae_jax's configs (784-500 relu -> 20; 20-500 relu -> 784 sigmoid),
Flax's initialization (`--init torch`: PyTorch's nn.Linear default kept, as ae_jax's
`kernel_init: torch`), Adam 1e-3, batch 128, evaluation on the test split each epoch:
  * iwae     IWAE(number_samples=5)                                  BaseTrainer
  * vamp     VAMP(number_components=500)                             BaseTrainer
  * beta_tc  BetaTCVAE(alpha=1, beta=6, gamma=1, use_mss=False)      BaseTrainer
  * wae      WAE_MMD(kernel_choice='imq', reg_weight=3e-2, kernel_bandwidth=1), deterministic
             encoder, its 'mse' (summed squared error)               BaseTrainer
  * rae      RAE_L2(embedding_weight=1e-4, reg_weight=1e-7), deterministic encoder
             CoupledOptimizerTrainer (decoder weight_decay = reg_weight)
  * aae      Adversarial_AE(adversarial_loss_scale=0.5), the Gaussian encoder drawn,
             pythae's Discriminator_MLP (256)                        AdversarialTrainer
             (both learning rates 1e-3)
The metric pythae reports for each: the importance-sampled NLL (K = --num_samples, its
get_nll) for iwae, vamp and beta_tc; the reconstruction MSE (mean per pixel, common.mse) for
all, and PSNR from the posterior mean (the deterministic code). Prints one JSON line, as
pythae_vae.py's (seconds per epoch: the train step alone, median after the first; the test
images' uint8 sum, `test_u8_sum`, which benchmarks/vae_vs_pythae.py compares with ae_jax's).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (starts the process clock)
import pythae_vae  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pythae import models as pm  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseEncoder  # noqa: E402
from pythae.pipelines import TrainingPipeline  # noqa: E402
from pythae import trainers  # noqa: E402

LATENT_DIM, HIDDEN, PIXELS = pythae_vae.LATENT_DIM, pythae_vae.HIDDEN, pythae_vae.PIXELS
LIKELIHOOD_FAMILIES = ("iwae", "vamp", "beta_tc")
FAMILIES = LIKELIHOOD_FAMILIES + ("wae", "rae", "aae")


class DeterministicEncoder(BaseEncoder):
  """784 -> Linear(500) + relu -> Linear(20) `embedding` (ae_jax's `mlp` net)."""

  def __init__(self):
    BaseEncoder.__init__(self)
    self.hidden = nn.Linear(PIXELS, HIDDEN)
    self.code = nn.Linear(HIDDEN, LATENT_DIM)

  def forward(self, x: torch.Tensor) -> ModelOutput:
    return ModelOutput(embedding=self.code(torch.relu(self.hidden(x.reshape(x.shape[0], -1)))))


def build(family: str, lr: float, init: str = "flax"):
  """(model, trainer config class and kwargs) of a family; `init` 'flax' re-initializes
  the encoder and decoder as Flax's nn.Dense, 'torch' keeps nn.Linear's own."""
  common_cfg = {"input_dim": (1, 28, 28), "latent_dim": LATENT_DIM}
  gaussian = family not in ("wae", "rae")
  encoder = pythae_vae.Encoder() if gaussian else DeterministicEncoder()
  decoder = pythae_vae.Decoder()
  if init == "flax":
    pythae_vae.flax_init(encoder)
    pythae_vae.flax_init(decoder)
  if family == "iwae":
    model = pm.IWAE(pm.IWAEConfig(**common_cfg, reconstruction_loss="bce", number_samples=5),
                    encoder=encoder, decoder=decoder)
  elif family == "vamp":
    model = pm.VAMP(pm.VAMPConfig(**common_cfg, reconstruction_loss="bce",
                                  number_components=500), encoder=encoder, decoder=decoder)
  elif family == "beta_tc":
    model = pm.BetaTCVAE(pm.BetaTCVAEConfig(**common_cfg, reconstruction_loss="bce", alpha=1.0,
                                            beta=6.0, gamma=1.0, use_mss=False),
                         encoder=encoder, decoder=decoder)
  elif family == "wae":
    model = pm.WAE_MMD(pm.WAE_MMD_Config(**common_cfg, kernel_choice="imq", reg_weight=3e-2,
                                         kernel_bandwidth=1.0), encoder=encoder, decoder=decoder)
  elif family == "rae":
    model = pm.RAE_L2(pm.RAE_L2_Config(**common_cfg, embedding_weight=1e-4, reg_weight=1e-7),
                      encoder=encoder, decoder=decoder)
    return model, trainers.CoupledOptimizerTrainerConfig, {
        "encoder_learning_rate": lr, "decoder_learning_rate": lr,
        "decoder_optimizer_params": {"weight_decay": 1e-7}}
  else:
    model = pm.Adversarial_AE(pm.Adversarial_AE_Config(**common_cfg, reconstruction_loss="bce",
                                                       adversarial_loss_scale=0.5),
                              encoder=encoder, decoder=decoder)
    return model, trainers.AdversarialTrainerConfig, {
        "autoencoder_learning_rate": lr, "discriminator_learning_rate": lr}
  return model, trainers.BaseTrainerConfig, {"learning_rate": lr, "optimizer_cls": "Adam"}


@torch.no_grad()
def reconstructions(model, x: torch.Tensor) -> np.ndarray:
  """decoder(embedding) in [0, 1], NHWC: the posterior mean, or the deterministic code."""
  model.eval()
  out = [model.decoder(model.encoder(x[i:i + 1000]).embedding).reconstruction
         for i in range(0, len(x), 1000)]
  return torch.cat(out).numpy().transpose(0, 2, 3, 1)


def parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--family", required=True, choices=FAMILIES)
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--init", choices=("flax", "torch"), default="flax")
  parser.add_argument("--threads", type=int, default=None)
  parser.add_argument("--num_samples", type=int, default=pythae_vae.NUM_SAMPLES)
  parser.add_argument("--train_images", type=int, default=None)
  parser.add_argument("--test_images", type=int, default=None)
  parser.add_argument("--samples_out", help="write --sample_count images from the model's "
                      "prior (pythae's sampler for it) as .npy")
  parser.add_argument("--sample_count", type=int, default=common.SAMPLE_COUNT)
  return parser.parse_args()


@torch.no_grad()
def prior_samples(family: str, model, x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
  """[N, 28, 28, 1] in [0, 1] from pythae's sampler for the family, as ae_jax's `sample`
  draws: rae from a 10-component Gaussian mixture fitted to its train codes
  (GaussianMixtureSampler), vamp from its pseudo-inputs' mixture (VAMPSampler), the others
  from N(0, I) (NormalSampler)."""
  from pythae import samplers  # pylint: disable=import-outside-toplevel
  model.eval()
  torch.manual_seed(seed)
  if family == "rae":
    sampler = samplers.GaussianMixtureSampler(
        model=model, sampler_config=samplers.GaussianMixtureSamplerConfig(n_components=10))
    sampler.fit(train_data=torch.from_numpy(np.ascontiguousarray(x_train)))
  elif family == "vamp":
    sampler = samplers.VAMPSampler(model=model)
  else:
    sampler = samplers.NormalSampler(model=model)
  out = sampler.sample(num_samples=count, batch_size=1000)
  return out.numpy().transpose(0, 2, 3, 1)


def main() -> None:
  args = parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  data = common.load_fashion_mnist()
  x_train = data["x_train"][:args.train_images].transpose(0, 3, 1, 2)  # NCHW
  x_test = data["x_test"][:args.test_images].transpose(0, 3, 1, 2)
  del data
  model, config_cls, optim = build(args.family, common.LEARNING_RATE, args.init)
  timer = pythae_vae.EpochTimer()
  with tempfile.TemporaryDirectory(prefix=f"pythae_{args.family}_") as tmp:
    config = config_cls(output_dir=tmp, num_epochs=args.epochs,
                        per_device_train_batch_size=common.BATCH_SIZE,
                        per_device_eval_batch_size=common.EVAL_BATCH_SIZE, seed=args.seed,
                        no_cuda=True, **optim)
    setup_seconds = common.since_start()
    pipeline = TrainingPipeline(model=model, training_config=config)
    pipeline(train_data=x_train, eval_data=x_test, callbacks=[timer])
  trained = pipeline.trainer.model
  peak_rss_train_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  test = torch.from_numpy(np.ascontiguousarray(x_test))
  restored = reconstructions(trained, test)
  clean = x_test.transpose(0, 2, 3, 1)
  record = {
      "framework": "pythae", "model": args.family, "init": args.init,
      "epochs": len(timer.epoch_seconds),
      "steps_per_epoch": len(pipeline.trainer.train_loader), "threads": torch.get_num_threads(),
      "num_params": sum(p.numel() for p in trained.parameters()),
      "epoch_seconds": [round(s, 4) for s in timer.epoch_seconds],
      "seconds_per_epoch": statistics.median(timer.epoch_seconds[1:] or timer.epoch_seconds),
      "setup_seconds": setup_seconds, "eval_loss": timer.eval_losses[-1] if timer.eval_losses
      else None, "mse": common.mse(restored, clean),
      "psnr_db": common.psnr_db(restored, clean), "test_images": len(x_test),
      "test_u8_sum": int(np.rint(x_test * 255.0).astype(np.int64).sum()),
      "peak_rss_train_mb": peak_rss_train_mb}
  if args.family in LIKELIHOOD_FAMILIES:
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # VAMP's get_nll prints its progress
      nll = pythae_vae.nll_per_image(trained, test, args.num_samples)
    record.update(common.mean_and_se("nll", nll), num_samples=args.num_samples,
                  nll_seconds=time.perf_counter() - t0)
  if args.samples_out:
    common.save_samples(args.samples_out, prior_samples(args.family, trained, x_train,
                                                        args.sample_count, args.seed))
  record.update(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                process_seconds=common.since_start())
  common.emit(record)


if __name__ == "__main__":
  main()
