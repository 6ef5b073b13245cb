"""Variational autoencoder on Fashion-MNIST, as the Flax examples/vae: MLP encoder 784-500
(relu) -> mean and log-variance of a 20-dim Gaussian code -> MLP decoder 20-500-784 logits;
Bernoulli likelihood (BCE summed over pixels) on the [0, 1] intensities (not binarized),
KL weight 1 (the ELBO), Adam 1e-3, batch 128, 30 epochs.

metrics.jsonl logs train_/val_reconstruction, _kl and _elbo (nats per image). Then:
    python -m ae_jax.likelihood --workdir runs/vae        # importance-sampled NLL (nats)
    python -m ae_jax.sample --workdir runs/vae --out runs/vae/samples.png

Run:   python launch.py --config configs/vae.py --workdir runs/vae
Results: README "Results" (the command there, the machine named beside the figures).
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict(
      {"name": "vae", "hidden": (500,), "latent_dim": 20, "activation": "relu"})
  config.decoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (500,), "activation": "relu"})
  config.loss = "bernoulli"
  config.loss_weights.kl = 1.0
  config.num_epochs = 30
  config.batch_size = 128
  return config
