"""Convolutional autoencoder (code 4x4x8) on Fashion-MNIST, the lecture's architecture.

Run:   python launch.py --config configs/conv.py
Result on the 2-core CPU dev machine (10 epochs): see README "Results".
"""
from configs import default


def get_config():
  config = default.get_config()
  config.model = "conv"
  config.num_epochs = 10
  return config
