"""Importance-weighted autoencoder (Burda et al. 2016) on Fashion-MNIST: configs/vae.py's
model (MLP 784-500 -> 20-dim Gaussian code -> 500-784 logits, Bernoulli likelihood, Adam
1e-3, batch 128, 30 epochs) trained on the K = 5 sample bound
    -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)
(`importance_samples` = 5; the encoder reports its KL at each draw, `encoder.kl` =
'sampled', which the bound needs). pythae's `IWAE` (number_samples) has the same gradient;
its logged loss is not the bound (ae_jax/training/objectives.py). val_loss is the K-sample
bound on the test split, val_elbo the single-sample ELBO of the same draws.
    python -m ae_jax.likelihood --workdir runs/iwae       # NLL, K = 200 (as for the VAE)

Run:   python launch.py --config configs/iwae.py --workdir runs/iwae
"""
from configs import vae


def get_config():
  config = vae.get_config()
  config.encoder.kl = "sampled"
  config.importance_samples = 5
  return config
