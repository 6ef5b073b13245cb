"""Adversarial autoencoder (Makhzani et al. 2016): the code is pulled to the prior N(0, I) by
a discriminator on the code, trained with an optimizer of its own.

    config.encoder = dict(name="adversarial", net=dict(name="vae", hidden=(500,), latent_dim=20))
    config.loss = "bernoulli"; config.loss_weights.adversarial = 0.5     # configs/aae.py

The discriminator D (an MLP on the flat code, `discriminator_hidden` relu layers, one logit)
scores codes z and as many prior draws z~ ('sample' stream). Two terms per image:
    adversarial    = -log D(z)                       (the autoencoder: codes pass as prior)
    discrimination = -log D(z~) - log(1 - D(z))      (D: prior draws true, codes false)
pythae 0.1.2's `Adversarial_AE` (adversarial_loss_scale = loss_weights.adversarial,
reconstruction_loss_scale 1; its BCEs batch means, so per-image means here) with its
`AdversarialTrainer`: the encoder and decoder take an Adam step on reconstruction +
0.5 adversarial, the discriminator (its own `ParamGroup`, ae_jax/models/autoencoder.py)
an Adam step on `discrimination` alone, both from the same forward pass; each loss's
gradient reaches only its own group (pythae's z.detach() for D's loss). A Gaussian net
(pythae's default encoder) gives the draw from q(z|x); its KL is not used.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks, linear
from ae_jax.models.autoencoder import ParamGroup
from ae_jax.models.regularized import RegularizedEncoder, flat


class Discriminator(nn.Module):
  """Dense(h) + relu for each h, then Dense(1): the logit of 'drawn from the prior'."""
  hidden: Sequence[int] = (256,)
  kernel_init: str = "lecun_normal"  # checks.INITIALIZERS; 'torch' as pythae's (nn.Linear)

  @nn.compact
  def __call__(self, z_BxD: jax.Array) -> jax.Array:
    x = z_BxD
    for i, h in enumerate(self.hidden):
      x = nn.relu(linear.dense(h, self.kernel_init, name=f"hidden{i}")(x))
    return linear.dense(1, self.kernel_init, name="logit")(x)[:, 0]


class AdversarialEncoder(RegularizedEncoder):
  """`net`'s code, reporting `adversarial` and `discrimination`; the discriminator's params
  are the parameter group 'discriminator'."""
  discriminator_hidden: Sequence[int] = (256,)  # pythae's Discriminator_MLP
  discriminator_learning_rate: float | None = None  # None: the run's learning rate
  # pythae's Discriminator_MLP keeps PyTorch's initialization: 'torch' matches it
  discriminator_kernel_init: str = "lecun_normal"

  def __post_init__(self):
    checks.positive_ints(self, "discriminator_hidden")
    checks.initializer(self, "discriminator_kernel_init")
    lr = self.discriminator_learning_rate
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
      raise checks.BadField("discriminator_learning_rate", "a positive number, or None")
    super().__post_init__()

  @nn.nowrap
  def param_groups(self) -> tuple[ParamGroup, ...]:
    lr = self.discriminator_learning_rate
    return (ParamGroup("discriminator", ("discriminator",), ("discrimination",),
                       None if lr is None else float(lr)),)

  def setup(self):
    super().setup()
    self.discriminator = Discriminator(tuple(self.discriminator_hidden),
                                       self.discriminator_kernel_init)

  def regularize(self, z) -> None:
    if not self.has_rng("sample"):
      return
    z = flat(z)
    prior = jax.random.normal(self.make_rng("sample"), z.shape, jnp.float32)
    fake, real = self.discriminator(z), self.discriminator(prior)
    self.sow("losses", "adversarial", jax.nn.softplus(-fake))  # -log sigmoid(fake)
    self.sow("losses", "discrimination", jax.nn.softplus(-real) + jax.nn.softplus(fake))
