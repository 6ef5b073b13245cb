"""The learned image codec (ae_jax/models/codec.py): an MLP analysis transform to a
96-value code, a factorized entropy bottleneck, an MLP synthesis transform; trained on
rate + lambda * distortion with CompressAI's lambda (loss = lambda * 255^2 * MSE + bpp), here
divided by lambda * 255^2 * H * W: mse per pixel + loss_weights.rate * bits per image.

Run one point of the rate-distortion curve (lambda after the colon; default 0.0035):
    python launch.py --config configs/codec.py:0.0035 --workdir runs/codec/0.0035
then its real bitstreams, entropy coded with constriction:
    python -m ae_jax.compress encode --workdir runs/codec/0.0035 --dataset fashion_mnist \
        --split test --out test.aec          # --quant entropy, the default for a codec run
    python -m ae_jax.compress decode --workdir runs/codec/0.0035 --codes test.aec --out restored/
The curve (every lambda of LAMBDAS) and its comparison with JPEG, WebP, AVIF, PNG:
docs/compression.md, with the commands that made it.
"""
import ml_collections

from configs import default

LAMBDAS = (0.0009, 0.0018, 0.0035, 0.0067, 0.013, 0.025)  # CompressAI's ladder (its low end)
IMAGE_PIXELS = 28 * 28


def rate_weight(lmbda: float, pixels: int = IMAGE_PIXELS) -> float:
  """loss_weights.rate for CompressAI's lambda: 1 / (lambda * 255^2 * pixels)."""
  return 1.0 / (lmbda * 255.0**2 * pixels)


def compressai_optimizer(config, lmbda: float) -> None:
  """Sets Adam's epsilon and the gradient clip of `config` to CompressAI's (torch's 1e-8 and
  its example trainer's clip at norm 1.0) on this loss's scale. The loss here is
  CompressAI's (lambda 255^2 MSE + bpp) divided by lambda 255^2: Adam's steps do not depend
  on that factor, but its epsilon does not scale with it, nor does a clip's norm. With the
  default 1e-8, epsilon acts ~lambda 255^2 times larger than in CompressAI's training (2.6e-4
  at lambda 0.4) and held back the GDN and entropy-model parameters, whose gradients are
  smallest: docs/compression.md, "Looking for the gap"."""
  scale = lmbda * 255.0**2
  config.adam_eps = 1e-8 / scale
  config.grad_clip_norm = 1.0 / scale


def parse_lambda(lmbda: str, config: str = "codec") -> float:
  """The lambda after a config's colon, refused (ValueError, one line) unless a number > 0."""
  try:
    value = float(lmbda)
  except ValueError:
    raise ValueError(f"lambda {lmbda!r} is not a number: give one after the colon, as "
                     f"configs/{config}.py:0.0035") from None
  if not value > 0:
    raise ValueError(f"lambda {lmbda!r} must be > 0: give one as configs/{config}.py:0.0035")
  return value


def get_config(lmbda: str = "0.0035"):
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict({
      "name": "factorized",
      "analysis": {"name": "mlp", "hidden": (512,), "latent_dim": 96,
                   "code_activation": "linear"},
      "filters": (3, 3, 3), "init_scale": 10.0})  # the prior's CDF network (tfc's defaults)
  config.decoder = ml_collections.ConfigDict({"name": "mlp", "hidden": (512,)})
  config.loss = "mse"
  config.loss_weights.rate = rate_weight(parse_lambda(lmbda))
  config.num_epochs = 10
  config.batch_size = 128
  return config
