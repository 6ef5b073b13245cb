"""Deep dense autoencoder 784-128-64-32-64-128-784 (relu) on Fashion-MNIST: the Keras blog's
"deep autoencoder" ("Building Autoencoders in Keras": 100 epochs, batch 256, Adam, BCE).

Run:   python launch.py --config configs/deep.py
Results: README "Results" (the command there, the machine named beside the figures).
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (128, 64), "latent_dim": 32, "activation": "relu",
       "code_activation": "relu"})
  config.decoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (64, 128), "activation": "relu"})
  config.num_epochs = 100
  config.batch_size = 256
  return config
