"""beta-VAE (Higgins et al. 2017) on Fashion-MNIST: configs/vae.py with the KL weighed
beta = 4 (`loss_weights.kl`), ramped up from 0 over the first epoch
(`loss_warmup_steps` = 468, one epoch of batch 128). A stronger pull to the prior: a
smoother, more disentangled code, blurrier reconstructions. The logged ELBO
(val_elbo) is still the beta = 1 bound, so it compares with configs/vae.py's.

Run:   python launch.py --config configs/beta_vae.py --workdir runs/beta_vae
Results: README "Results" (the command there, the machine named beside the figures).
"""
from configs import vae


def get_config():
  config = vae.get_config()
  config.loss_weights.kl = 4.0
  config.loss_warmup_steps = 468
  return config
