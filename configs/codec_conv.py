"""The convolutional factorized-prior codec (Ballé et al. 2018's `bmshj2018-factorized`,
CompressAI's; arXiv:1802.01436): the hyperprior codec's GDN transforms (N=64, M=96, three
stride-2 levels: a 4x4x96 code for a 28x28 image) with a factorized entropy bottleneck on
y itself (ae_jax/models/codec.py with the 'gdn' analysis and synthesis of
ae_jax/models/gdn_transforms.py). The side by side with configs/hyperprior.py: same
transforms, same lambdas and epochs, no side information.

One point (lambda after the colon; default 0.025):
    python launch.py --config configs/codec_conv.py:0.025 --workdir runs/codec_conv/0.025
    python -m ae_jax.compress encode --workdir runs/codec_conv/0.025 --dataset fashion_mnist \
        --split test --out test.aec           # range coded with its prior (format version 3)
Every lambda of LAMBDAS, 8 epochs each, with the hyperprior's: scripts/hyperprior_results.sh.
Its codes files hold one code shape: encode images of the run's size (the hyperprior's
take any size).
"""
import ml_collections

from configs import codec, hyperprior

LAMBDAS = hyperprior.LAMBDAS


def get_config(lmbda: str = "0.025"):
  config = hyperprior.get_config(lmbda)
  config.encoder = ml_collections.ConfigDict({
      "name": "factorized",
      "analysis": {"name": "gdn", "features": 64, "latent_channels": 96, "levels": 3},
      "filters": (3, 3, 3), "init_scale": 10.0})
  lam = codec.parse_lambda(lmbda, "codec_conv")
  config.loss_weights.rate = codec.rate_weight(lam)
  codec.compressai_optimizer(config, lam)
  return config
