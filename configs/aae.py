"""Adversarial autoencoder (Makhzani et al. 2016) on Fashion-MNIST: the `vae` encoder's
network (MLP 784-500 -> mean and log-variance of a 20-dim code; the code is its draw, as
pythae's default encoder) -> MLP decoder 20-500-784 logits; Bernoulli likelihood plus 0.5 x
the adversarial term (pythae 0.1.2's Adversarial_AE, adversarial_loss_scale 0.5), a
discriminator 20-256-1 on the code with its own Adam (ae_jax/models/adversarial.py), both
Adam 1e-3, batch 128, 30 epochs. metrics.jsonl logs `adversarial` and `discrimination`;
`python -m ae_jax.sample` decodes N(0, I) draws.

Run:   python launch.py --config configs/aae.py --workdir runs/aae
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict({
      "name": "adversarial", "discriminator_hidden": (256,),
      "net": {"name": "vae", "hidden": (500,), "latent_dim": 20, "activation": "relu"}})
  config.decoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (500,), "activation": "relu"})
  config.loss = "bernoulli"
  config.loss_weights.adversarial = 0.5
  config.num_epochs = 30
  return config
