"""Denoising convolutional autoencoder: input + N(0.5, 0.1^2) clipped to [0,1] -> clean image.

Run:   python launch.py --config configs/denoise.py
Result on the 2-core CPU dev machine (30 epochs): see README "Results".
"""
from configs import default


def get_config():
  config = default.get_config()
  config.model = "conv"
  config.noise.loc = 0.5
  config.noise.scale = 0.1
  config.num_epochs = 30
  return config
