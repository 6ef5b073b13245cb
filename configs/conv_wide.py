"""Denoising with the general conv autoencoder (ae_jax/models/convnet.py), wider than the
lecture's: the same noise N(0.5, 0.1^2), the same code size (4, 4, 8) = 128 numbers, the
same 30 epochs as configs/denoise.py, so the difference in blur is the network's width.

Run:   python launch.py --config configs/conv_wide.py
Any image size: --config.dataset=cifar10 (32x32x3) works unchanged (codes 4x4x8 there too).
Measured on the 2-core Intel Xeon machine (README "Results", while other jobs ran): after
30 epochs val BCE 0.2683, val PSNR 21.56 dB (noisy input 7.12 dB: +14.44 dB), SSIM 0.765
(the lecture's denoise.py: 0.2900, 18.60 dB, 0.606); 55,817 parameters.
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict(
      {"name": "convnet", "features": (16, 32, 64), "latent_channels": 8, "kernel_size": 3,
       "downsample": "stride", "norm": "none", "activation": "relu"})
  config.decoder = ml_collections.ConfigDict(
      {"name": "convnet", "features": (64, 32, 16), "kernel_size": 3,
       "upsample": "nearest", "norm": "none", "activation": "relu"})
  config.noise.loc = 0.5
  config.noise.scale = 0.1
  config.num_epochs = 30
  return config
