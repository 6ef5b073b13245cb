"""Wasserstein autoencoder with MMD (Tolstikhin et al. 2018) on Fashion-MNIST: MLP encoder
784-500 (relu) -> 20-dim deterministic code -> MLP decoder 20-500-784; the squared error
summed over pixels (`sse`) plus reg_weight * MMD between the batch's codes and N(0, I)
draws, IMQ kernel, bandwidth 1, pythae's scales (ae_jax/models/wae.py; pythae 0.1.2's
WAE_MMD defaults: kernel_choice 'imq', reg_weight 3e-2, kernel_bandwidth 1). Adam 1e-3,
batch 128, 30 epochs. `python -m ae_jax.sample` decodes N(0, I) draws.

Run:   python launch.py --config configs/wae.py --workdir runs/wae
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict({
      "name": "wae", "kernel": "imq", "kernel_bandwidth": 1.0,
      "net": {"name": "mlp", "hidden": (500,), "latent_dim": 20, "activation": "relu",
              "code_activation": "linear"}})  # pythae's code is linear (mlp: relu)
  config.decoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (500,), "activation": "relu"})
  config.loss = "sse"
  config.loss_weights.mmd = 3e-2
  config.num_epochs = 30
  return config
