"""The mean-scale hyperprior codec (Minnen et al. 2018, arXiv:1809.02736, without its
context model; CompressAI's `mbt2018-mean`): GDN analysis/synthesis transforms (N=64,
M=96, three stride-2 levels: 28x28 is padded to 32x32, y is 4x4x96), a two-level
hyperprior (z 1x1x64, factorized), a Gaussian conditional on y with predicted means and
scales. ae_jax/models/hyperprior.py; `--config.encoder.mean_scale=False` gives Ballé et
al. 2018's scale hyperprior (`bmshj2018-hyperprior`). Trained on rate + lambda * distortion
with CompressAI's lambda, as configs/codec.py (loss_weights.rate = 1 / (lambda 255^2 H W)),
with Adam's epsilon and the gradient clip CompressAI's (1e-8, its trainer's 1.0) on this
loss's scale (configs/codec.py compressai_optimizer; docs/compression.md "Found: Adam's ε").

One point of the rate-distortion curve (lambda after the colon; default 0.025):
    python launch.py --config configs/hyperprior.py:0.025 --workdir runs/hyperprior/0.025
its real bitstreams (y and z range coded, any image size; format version 4):
    python -m ae_jax.compress encode --workdir runs/hyperprior/0.025 --dataset fashion_mnist \
        --split test --out test.aec
    python -m ae_jax.compress decode --workdir runs/hyperprior/0.025 --codes test.aec \
        --out restored/ --dataset fashion_mnist --split test
The whole curve (every lambda of LAMBDAS, 8 epochs each) against JPEG, WebP and AVIF:
    bash scripts/hyperprior_results.sh
What to expect: the reference design built from CompressAI's layers reached, at 8 epochs on
2,000 test images, 94.6 B / 28.40 dB at lambda 0.0067, 172.7 B / 32.45 dB at 0.025,
332 B / 36.57 dB at 0.1 and 503 B / 38.40 dB at 0.4 (66-69 s an epoch on 2 threads of the
Zen 5 machine: /work/shared/DESIGN.md); this model at 8 epochs: 146 B / 31.33 dB at 0.025
and 443 B / 34.11 dB at 0.4 on the whole test split (docs/compression.md).
A smoke run: --config.num_epochs=1 --config.steps_per_epoch=50.
"""
import ml_collections

from configs import codec, default

# 22 dB and below to 38 dB and above: from the factorized codec's low end to the calibration's top.
LAMBDAS = (0.0003, 0.0009, 0.0035, 0.0067, 0.025, 0.1, 0.4)


def get_config(lmbda: str = "0.025"):
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict({
      "name": "hyperprior",
      "analysis": {"name": "gdn", "features": 64, "latent_channels": 96, "levels": 3},
      "hyper_features": 64, "hyper_levels": 2, "mean_scale": True,
      "filters": (3, 3, 3), "init_scale": 10.0})  # z's density (tfc's defaults)
  config.decoder = ml_collections.ConfigDict({"name": "gdn", "features": 64, "levels": 3})
  config.loss = "mse"
  lam = codec.parse_lambda(lmbda, "hyperprior")
  config.loss_weights.rate = codec.rate_weight(lam)
  codec.compressai_optimizer(config, lam)  # Adam's epsilon and the clip on this loss's scale
  config.num_epochs = 8
  config.batch_size = 128
  return config
