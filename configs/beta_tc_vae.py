"""beta-TC-VAE (Chen et al. 2018) on Fashion-MNIST: configs/vae.py's model (MLP 784-500 ->
20-dim Gaussian code -> 500-784 logits, Bernoulli likelihood, Adam 1e-3, batch 128, 30
epochs) with the KL split into mutual information, total correlation and dimension-wise
KL (ae_jax/models/beta_tc_vae.py), weighed alpha = 1, beta = 6, gamma = 1 (the paper's
beta; pythae's BetaTCVAE with alpha, beta, gamma and use_mss=False), the aggregate
posterior by minibatch-weighted sampling over the 60,000 training images.
metrics.jsonl logs each term, and `kl` (their sum) with the ELBO.

Run:   python launch.py --config configs/beta_tc_vae.py --workdir runs/beta_tc_vae
"""
from configs import vae


def get_config():
  config = vae.get_config()
  config.encoder.name = "beta_tc"
  config.encoder.dataset_size = 60000
  config.encoder.sampling = "mws"
  del config.loss_weights["kl"]
  config.loss_weights.mutual_info = 1.0
  config.loss_weights.total_correlation = 6.0
  config.loss_weights.dimension_kl = 1.0
  return config
