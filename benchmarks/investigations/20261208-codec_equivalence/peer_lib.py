"""The CompressAI peer (benchmarks/peers/compressai_codec.py's mbt2018-mean, N=64, M=96,
3 g_a levels) and a copy of it whose strided layers use Flax's 'SAME' alignment.

Runs in CompressAI's venv. Imports the peer's own builder (read-only) so the model is
exactly the one the benchmark trains; then `flaxify` swaps each stride-2 Conv2d /
ConvTranspose2d for a wrapper that keeps the *same* nn.Parameter objects but computes
Flax's alignment:
  conv:   F.pad(x, (1, 2, 1, 2)), conv stride 2, padding 0   (Flax SAME: pad 1 low, 2 high)
  deconv: conv_transpose2d stride 2, padding 0, crop [1 : 1 + 2n]  with the torch weight
          being Flax's kernel flipped in both spatial axes (lax.conv_transpose without
          transpose_kernel reads output t = 2i + 3 - a).
Everything else (GDN, EntropyBottleneck, GaussianConditional, LowerBound, the loss) is
CompressAI's own.
"""
import os
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, "/work/main/benchmarks/peers")
import compressai_codec as peer  # noqa: E402  (the benchmark's own builder)
from compressai.entropy_models import EntropyModel  # noqa: E402
from compressai.losses import RateDistortionLoss  # noqa: E402


class FlaxConv(nn.Module):
  def __init__(self, conv: nn.Conv2d):
    super().__init__()
    self.weight, self.bias = conv.weight, conv.bias

  def forward(self, x):
    return F.conv2d(F.pad(x, (1, 2, 1, 2)), self.weight, self.bias, stride=2)


class FlaxDeconv(nn.Module):
  def __init__(self, deconv: nn.ConvTranspose2d):
    super().__init__()
    self.weight, self.bias = deconv.weight, deconv.bias

  def forward(self, x):
    h, w = x.shape[-2:]
    y = F.conv_transpose2d(x, self.weight, self.bias, stride=2)
    return y[..., 1:1 + 2 * h, 1:1 + 2 * w]


def flaxify(model):
  """Replace every stride-2 conv / deconv in g_a, g_s, h_a, h_s (same Parameters)."""
  for seq in (model.g_a, model.g_s, model.h_a, model.h_s):
    for i, layer in enumerate(seq):
      if isinstance(layer, nn.ConvTranspose2d):
        seq[i] = FlaxDeconv(layer)
      elif isinstance(layer, nn.Conv2d) and layer.stride == (2, 2):
        seq[i] = FlaxConv(layer)
  return model


def build(seed=0, flax_aligned=True):
  torch.manual_seed(seed)
  model = peer.grayscale_mean_scale_hyperprior(64, 96, 3)
  return flaxify(model) if flax_aligned else model


# --------------------------------------------------------------- noise injection
_NOISE = {}


def set_noise(z_noise, y_noise):
  """z_noise in the EntropyBottleneck's layout [C, 1, B*H*W]; y_noise [B, M, h, w]."""
  _NOISE["z"], _NOISE["y"] = z_noise, y_noise


_orig_quantize = EntropyModel.quantize


def _quantize(self, inputs, mode, means=None):
  if mode == "noise":
    key = "z" if self.__class__.__name__ == "EntropyBottleneck" else "y"
    noise = _NOISE[key]
    assert noise.shape == inputs.shape, (key, noise.shape, inputs.shape)
    return inputs + noise.to(inputs.dtype)
  return _orig_quantize(self, inputs, mode, means)


EntropyModel.quantize = _quantize


def forward_parts(model, x, sigmoid=True):
  """The peer's MeanScaleHyperprior.forward, with every intermediate returned."""
  y = model.g_a(x)
  z = model.h_a(y)
  z_hat, z_lik = model.entropy_bottleneck(z)
  params = model.h_s(z_hat)
  scales_hat, means_hat = params.chunk(2, 1)
  y_hat, y_lik = model.gaussian_conditional(y, scales_hat, means=means_hat)
  logits = model.g_s(y_hat)
  x_hat = torch.sigmoid(logits) if sigmoid else logits
  return dict(y=y, z=z, z_hat=z_hat, z_lik=z_lik, scales_raw=scales_hat, means=means_hat,
              y_hat=y_hat, y_lik=y_lik, logits=logits, x_hat=x_hat)


def load_images(n=None):
  import gzip
  with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    data = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
  return data if n is None else data[:n]
