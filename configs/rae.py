"""Regularized autoencoder, L2 (Ghosh et al. 2020) on Fashion-MNIST: MLP encoder 784-500
(relu) -> 20-dim deterministic code -> MLP decoder 20-500-784; the squared error summed over
pixels (`sse`) plus embedding_weight * |z|^2 / 2 (`loss_weights.code_l2` = 1e-4) and weight
decay reg_weight = 1e-7 on the decoder (pythae 0.1.2's RAE_L2 defaults; ae_jax/models/
rae.py). Adam 1e-3, batch 128, 30 epochs. `python -m ae_jax.sample` fits a 10-component
Gaussian mixture to the training split's codes (stored beside the run) and decodes its draws.

Run:   python launch.py --config configs/rae.py --workdir runs/rae
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict({
      "name": "rae",
      "net": {"name": "mlp", "hidden": (500,), "latent_dim": 20, "activation": "relu",
              "code_activation": "linear"}})  # pythae's code is linear (mlp: relu)
  config.decoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (500,), "activation": "relu"})
  config.loss = "sse"
  config.loss_weights.code_l2 = 1e-4
  config.weight_decay.decoder = 1e-7
  config.num_epochs = 30
  return config
