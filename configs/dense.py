"""Dense autoencoder 784 -> 64 -> 784 on Fashion-MNIST (the lecture's compression model).

Run:   python launch.py --config configs/dense.py
Result on the 2-core CPU dev machine (10 epochs): see README "Results".
"""
from configs import default


def get_config():
  config = default.get_config()
  config.model = "dense"
  config.latent_dim = 64
  config.num_epochs = 10
  return config
