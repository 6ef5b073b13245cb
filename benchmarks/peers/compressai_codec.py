"""CompressAI's factorized-prior codec (bmshj2018-factorized) on Fashion-MNIST: the learned
codec's reference peer (issue #23); with --model mbt2018-mean, its mean-scale hyperprior
built from its own layers in configs/hyperprior.py's architecture (issue #29's peer, #30's
timing). Runs in CompressAI's own venv (compressai_env.sh):

  benchmarks/.venv-compressai/bin/python benchmarks/peers/compressai_codec.py \
      --lambdas 0.0018 --epochs 10 --out runs/compressai
  benchmarks/.venv-compressai/bin/python benchmarks/peers/compressai_codec.py \
      --model mbt2018-mean --N 64 --M 96 --lambdas 0.025 --epochs 8 --out runs/compressai_mbt
  (--levels 3 with the factorized model: configs/codec_conv.py's transforms)

mbt2018-mean here: `compressai.models.MeanScaleHyperprior(N, M)` with g_a and g_s at three
stride-2 levels, as configs/hyperprior.py (conv 5x5/2 -> GDN, twice, then conv 5x5/2 to M;
1-channel input and output), h_a and h_s CompressAI's own (conv 3x3 -> LeakyReLU -> conv
5x5/2 -> LeakyReLU -> conv 5x5/2; deconv 5x5/2 -> LeakyReLU -> deconv 5x5/2 to 3M/2 ->
LeakyReLU -> conv 3x3 to 2M): the same parameter count as ae_jax's (h_a 260,288, h_s
748,464 at N=64, M=96). Its latents are y M x 4 x 4 and z N x 1 x 1 per padded image; the
bytes are both strings, the estimate both likelihoods.

Model: `compressai.models.FactorizedPrior(N, M)` (4 stride-2 5x5 convs with GDN, an
EntropyBottleneck on the M-channel latent, the mirrored transposed convs with inverse GDN)
with its first conv and last transposed conv made 1-channel (Fashion-MNIST is grayscale;
the class hard-codes RGB). 28x28 does not divide by 16: each image is zero-padded 2 px on
every side to 32x32 (the background is 0, so the pad adds no edges) and the decoded image is
cropped back to the centre 28x28; the latent is M x 2 x 2 per image.

Training (the issue's protocol, the one ae_jax's codec uses): the 60k train images, pixels
/255, whole batches of 128 (468 per epoch) in a fresh order each epoch from numpy's
generator seeded with --seed; CompressAI's own `RateDistortionLoss` (lambda * 255^2 * MSE +
bpp) on the cropped 28x28 output, so MSE and bpp are over the original's 784 pixels; Adam
1e-3 on every parameter but the entropy bottleneck's quantiles, and CompressAI's usual
second Adam (1e-3) on `aux_loss()` for the quantiles (its `net_aux` optimizer split). No
gradient clipping unless --clip_max_norm (CompressAI's example trainer uses 1.0).

Evaluation on the whole 10k test split: `model.update(force=True)`, then per batch
`model.compress` (real ANS bitstreams: one string per image, its bytes counted),
`model.decompress`, crop, round to uint8; and the bits CompressAI's likelihoods estimate
(the eval-mode forward pass: the latent rounded around the medians, -log2 of its
likelihoods). Written to --out/lambda_<value>/: decoded.npy (uint8 [10000, 28, 28]),
bytes.npy (int32 per image), estimated_bits.npy (float64 per image), model.pt (state_dict)
and result.json; the same record is printed as one JSON line per lambda. PSNR and SSIM are
not computed here: benchmarks/codec_peer.py computes them in ae_jax's environment with
ae_jax.core.quality, the definitions every codec is measured with.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (numpy only: the IDX reader every peer shares)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import compressai  # noqa: E402
from compressai.losses import RateDistortionLoss  # noqa: E402
from compressai.layers import GDN  # noqa: E402
from compressai.models import FactorizedPrior, MeanScaleHyperprior  # noqa: E402
from compressai.models.utils import conv, deconv  # noqa: E402
from compressai.optimizers import net_aux_optimizer  # noqa: E402

LAMBDAS = (0.0009, 0.0018, 0.0035, 0.0067, 0.013)
PAD = 2  # 28 + 2 * 2 = 32, a multiple of FactorizedPrior's downsampling factor 16
SIZE = 28


def transforms(n: int, m: int, levels: int) -> tuple[torch.nn.Module, torch.nn.Module]:
  """1-channel g_a and g_s of CompressAI's layers at `levels` stride-2 levels, as
  ae_jax/models/gdn_transforms.py: [conv 5x5/2 -> GDN] x (levels - 1) -> conv 5x5/2 to M,
  and the mirror with transposed convs and inverse GDN."""
  g_a, g_s = [], []
  for i in range(levels - 1):
    g_a += [conv(1 if i == 0 else n, n), GDN(n)]
    g_s += [deconv(m if i == 0 else n, n), GDN(n, inverse=True)]
  g_a.append(conv(1 if levels == 1 else n, m))
  g_s.append(deconv(m if levels == 1 else n, 1))
  return torch.nn.Sequential(*g_a), torch.nn.Sequential(*g_s)


def grayscale_factorized_prior(n: int, m: int, levels: int = 4) -> FactorizedPrior:
  """CompressAI's FactorizedPrior(N, M) with 1 input and 1 output channel (its own four
  levels; three: configs/codec_conv.py's transforms)."""
  model = FactorizedPrior(n, m)
  if levels == 4:
    model.g_a[0] = conv(1, n)
    model.g_s[-1] = deconv(n, 1)
  else:
    model.g_a, model.g_s = transforms(n, m, levels)
  return model


def grayscale_mean_scale_hyperprior(n: int, m: int, levels: int = 3) -> MeanScaleHyperprior:
  """CompressAI's MeanScaleHyperprior(N, M) with configs/hyperprior.py's 1-channel g_a and
  g_s (three levels; its h_a, h_s, entropy bottleneck and Gaussian conditional as they
  are)."""
  model = MeanScaleHyperprior(n, m)
  model.g_a, model.g_s = transforms(n, m, levels)
  return model


MODELS = {"bmshj2018-factorized": grayscale_factorized_prior,
          "mbt2018-mean": grayscale_mean_scale_hyperprior}


def pad(x_bchw: torch.Tensor) -> torch.Tensor:
  return F.pad(x_bchw, (PAD, PAD, PAD, PAD))  # zeros: the images' background


def crop(x_bchw: torch.Tensor) -> torch.Tensor:
  return x_bchw[:, :, PAD:PAD + SIZE, PAD:PAD + SIZE]


def to_nchw(images_bhwc: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(images_bhwc.transpose(0, 3, 1, 2)))


def train_epoch(model, criterion, optimizers, x_train: np.ndarray, order: np.ndarray,
                batch_size: int, clip_max_norm: float) -> dict[str, float]:
  """One epoch over `order` in whole batches; mean loss, bpp, MSE and aux loss."""
  model.train()
  sums = {"loss": 0.0, "bpp": 0.0, "mse": 0.0, "aux": 0.0}
  steps = len(order) // batch_size
  for step in range(steps):
    x = to_nchw(x_train[order[step * batch_size:(step + 1) * batch_size]])
    optimizers["net"].zero_grad()
    optimizers["aux"].zero_grad()
    out = model(pad(x))
    losses = criterion({"x_hat": crop(out["x_hat"]), "likelihoods": out["likelihoods"]}, x)
    losses["loss"].backward()
    if clip_max_norm > 0:
      torch.nn.utils.clip_grad_norm_(model.parameters(), clip_max_norm)
    optimizers["net"].step()
    aux = model.aux_loss()
    aux.backward()
    optimizers["aux"].step()
    for key, value in (("loss", losses["loss"]), ("bpp", losses["bpp_loss"]),
                       ("mse", losses["mse_loss"]), ("aux", aux)):
      sums[key] += value.item()
  return {k: v / steps for k, v in sums.items()}


@torch.no_grad()
def estimated_bits(model, x_bchw: torch.Tensor) -> np.ndarray:
  """Per image: -log2 of CompressAI's likelihoods of the rounded latents (eval mode; y, and
  z where the model has a hyperprior)."""
  likelihoods = model(pad(x_bchw))["likelihoods"].values()
  return sum((-torch.log2(p)).flatten(1).sum(1).double() for p in likelihoods).numpy()


@torch.no_grad()
def evaluate(model, x_test: np.ndarray, batch_size: int) -> dict:
  """Real bitstreams of every test image: bytes, estimated bits, decoded uint8 pixels,
  and the seconds spent in compress and in decompress."""
  model.eval()
  model.update(force=True)
  nbytes, bits, decoded = [], [], []
  encode_s = decode_s = 0.0
  for start in range(0, len(x_test), batch_size):
    x = to_nchw(x_test[start:start + batch_size])
    t0 = time.perf_counter()
    packed = model.compress(pad(x))
    t1 = time.perf_counter()
    x_hat = model.decompress(packed["strings"], packed["shape"])["x_hat"]
    t2 = time.perf_counter()
    encode_s, decode_s = encode_s + t1 - t0, decode_s + t2 - t1
    # One string per image per latent (y; z too with a hyperprior).
    nbytes.extend(sum(len(s[i]) for s in packed["strings"]) for i in range(len(x)))
    bits.append(estimated_bits(model, x))
    pixels = torch.round(crop(x_hat).clamp(0, 1) * 255).to(torch.uint8)
    decoded.append(pixels[:, 0].numpy())
  return {"bytes": np.asarray(nbytes, np.int32), "estimated_bits": np.concatenate(bits),
          "decoded": np.concatenate(decoded), "encode_seconds": encode_s,
          "decode_seconds": decode_s}


def run_lambda(lmbda: float, data: dict, args: argparse.Namespace) -> dict:
  """Trains one model for `lmbda`, evaluates it, writes its folder; returns the record."""
  torch.manual_seed(args.seed)
  levels = args.levels or (4 if args.model == "bmshj2018-factorized" else 3)
  model = MODELS[args.model](args.N, args.M, levels)
  optimizers = net_aux_optimizer(model, {"net": {"type": "Adam", "lr": args.lr},
                                         "aux": {"type": "Adam", "lr": args.aux_lr}})
  criterion = RateDistortionLoss(lmbda=lmbda)
  x_train = data["x_train"][:args.train_images] if args.train_images else data["x_train"]
  x_test = data["x_test"][:args.test_images] if args.test_images else data["x_test"]
  rng = np.random.default_rng(args.seed)
  epoch_seconds, epoch_cpu_seconds, history = [], [], []
  for _ in range(args.epochs):
    order = rng.permutation(len(x_train))
    t0, c0 = time.perf_counter(), time.process_time()
    history.append(train_epoch(model, criterion, optimizers, x_train, order,
                               args.batch_size, args.clip_max_norm))
    epoch_seconds.append(time.perf_counter() - t0)
    epoch_cpu_seconds.append(time.process_time() - c0)
    print(f"lambda {lmbda:g} epoch {len(history)}: {epoch_seconds[-1]:.1f} s "
          f"({epoch_cpu_seconds[-1]:.1f} s CPU), " + ", ".join(
              f"{k} {v:.4g}" for k, v in history[-1].items()), file=sys.stderr, flush=True)
  t0 = time.perf_counter()
  ev = evaluate(model, x_test, args.eval_batch_size)
  eval_seconds = time.perf_counter() - t0
  n = len(x_test)
  out = os.path.join(args.out, f"lambda_{lmbda:g}")
  os.makedirs(out, exist_ok=True)
  np.save(os.path.join(out, "decoded.npy"), ev["decoded"])
  np.save(os.path.join(out, "bytes.npy"), ev["bytes"])
  np.save(os.path.join(out, "estimated_bits.npy"), ev["estimated_bits"])
  torch.save(model.state_dict(), os.path.join(out, "model.pt"))
  record = {
      "framework": "compressai", "compressai_version": compressai.__version__,
      "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
      "model": args.model, "N": args.N, "M": args.M, "levels": levels, "lambda": lmbda,
      "num_params": sum(p.numel() for p in model.parameters()),
      "epochs": args.epochs, "steps_per_epoch": len(x_train) // args.batch_size,
      "batch_size": args.batch_size, "seed": args.seed, "train_images": len(x_train),
      "test_images": n, "epoch_seconds": [round(s, 3) for s in epoch_seconds],
      # The median over every epoch: eager PyTorch has no compile in epoch 1.
      "seconds_per_epoch": statistics.median(epoch_seconds),
      "train_seconds": sum(epoch_seconds), "eval_seconds": eval_seconds,
      # CPU time of this process per epoch: what other work on a shared machine adds to
      # the wall time does not count here (with one thread it is the core's busy time).
      "epoch_cpu_seconds": [round(s, 3) for s in epoch_cpu_seconds],
      "cpu_seconds_per_epoch": statistics.median(epoch_cpu_seconds),
      "final_train": history[-1] if history else None,
      "bytes_per_image": float(ev["bytes"].mean()),
      "estimated_bytes_per_image": float(ev["estimated_bits"].mean() / 8),
      "encode_images_per_s": n / ev["encode_seconds"],
      "decode_images_per_s": n / ev["decode_seconds"],
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "process_seconds": common.since_start(), "out": out,
  }
  with open(os.path.join(out, "result.json"), "w") as f:
    json.dump(record, f, indent=1)
  return record


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--lambdas", default=",".join(map(str, LAMBDAS)),
                      help="comma-separated lambda values, each trained in turn")
  parser.add_argument("--out", required=True, help="folder for lambda_<value>/ outputs")
  parser.add_argument("--model", choices=sorted(MODELS), default="bmshj2018-factorized")
  parser.add_argument("--levels", type=int, default=None,
                      help="stride-2 levels of g_a and g_s (default: factorized 4, as "
                           "CompressAI's; mbt2018-mean 3, as configs/hyperprior.py)")
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--N", type=int, default=32, help="channels of the conv stages")
  parser.add_argument("--M", type=int, default=48, help="channels of the latent")
  parser.add_argument("--batch_size", type=int, default=common.BATCH_SIZE)
  parser.add_argument("--eval_batch_size", type=int, default=common.EVAL_BATCH_SIZE)
  parser.add_argument("--lr", type=float, default=common.LEARNING_RATE)
  parser.add_argument("--aux_lr", type=float, default=1e-3)
  parser.add_argument("--clip_max_norm", type=float, default=0.0)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--threads", type=int, default=1,
                      help="torch intra-op threads (1: one core of this shared machine)")
  parser.add_argument("--train_images", type=int, default=None,
                      help="first N train images only (a timing slice); default all 60k")
  parser.add_argument("--test_images", type=int, default=None,
                      help="first N test images only; default all 10k")
  parser.add_argument("--idx_dir", default=common.IDX_DIR)
  return parser.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)
  torch.set_num_threads(args.threads)
  data = common.load_fashion_mnist(args.idx_dir)
  for lmbda in (float(v) for v in args.lambdas.split(",")):
    common.emit(run_lambda(lmbda, data, args))


if __name__ == "__main__":
  main()
