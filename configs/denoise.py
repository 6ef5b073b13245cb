"""Denoising convolutional autoencoder: input + N(0.5, 0.1^2) clipped to [0,1] -> clean image.

Run:   python launch.py --config configs/denoise.py
Measured on the 2-core AVX2 dev machine (README "Results"): after 30 epochs val BCE 0.2900,
val PSNR 18.60 dB (noisy input 7.12 dB: +11.48 dB), SSIM 0.606; 12.8 s per epoch
(median), 7 min 17 s for the whole command.
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict({"name": "conv"})
  config.decoder = ml_collections.ConfigDict({"name": "conv"})
  config.noise.loc = 0.5
  config.noise.scale = 0.1
  config.num_epochs = 30
  return config
