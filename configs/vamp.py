"""VampPrior VAE (Tomczak & Welling 2018) on Fashion-MNIST: configs/vae.py's model with the
prior p(z) = 1/C sum_c q(z|u_c), a mixture of the encoder's own posteriors at C = 500
learned pseudo-inputs (pythae's `VAMP`, number_components; ae_jax/models/priors.py). The KL
has no closed form: `kl` is the single-sample estimate log q(z|x) - log p(z) at the draw.
Bernoulli likelihood, Adam 1e-3, batch 128, 30 epochs. `likelihood` and `sample` use the
learned prior (the NLL's p(z); samples drawn from a pseudo-input's posterior).

Run:   python launch.py --config configs/vamp.py --workdir runs/vamp
"""
from configs import vae


def get_config():
  config = vae.get_config()
  config.encoder.prior = {"name": "vamp", "components": 500}
  return config
