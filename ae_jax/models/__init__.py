"""Flax Linen autoencoders: one file per family, composed from configs by `registry`.

    dense.py     the lecture's 784 -> K -> 784, and the deep MLP (Keras blog)
    sparse.py    an MLP encoder with an L1-penalized code
    vae.py       Gaussian encoders (the variational autoencoder's), reporting their KL term
                 (IWAE: with config.importance_samples, ae_jax/training/objectives.py)
    vq.py        a vector-quantized encoder (VQ-VAE): codebook vectors, integer codes
    priors.py    priors of a Gaussian encoder's code: N(0, I), the VampPrior
    beta_tc_vae.py  the beta-TC-VAE's encoder: the KL as MI + TC + dimension-wise KL
    regularized.py  the base of encoders wrapping another and regularizing its code:
                 wae.py (MMD to N(0, I)), rae.py (L2 on the code), adversarial.py (a
                 discriminator on the code, a parameter group with its own optimizer)
    conv.py      the lecture's conv autoencoder (28x28x1 -> (4, 4, 8)), exact
    convnet.py   a general conv autoencoder for any H x W x C
    layers.py    the fast layer forms the lecture's conv model uses
    codec.py     the learned codec's encoder (analysis transform + factorized prior);
                 entropy.py its learned density
    autoencoder.py  Autoencoder = decoder(encoder(x)); the collections modules write;
                 ParamGroup, parameters a module trains with an optimizer of their own
    registry.py  config group -> module ('dense', or 'my_models:WideEncoder'), shape checks;
                 checks.py the field checks a module runs
    compiled.py  jitted applies of restored modules for the tools (one trace per model)

Every decoder returns *logits*; `Autoencoder.decode` and `Autoencoder.reconstruct` apply
the sigmoid at the edge so users get images in [0, 1], while the losses use the
numerically stable logits form. Modules take plain fields, never a config.

May import: `ae_jax.core`.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from ae_jax.models.autoencoder import Autoencoder
from ae_jax.models.conv import (ConvDecoder, ConvEncoder, PlainConvDecoder,  # noqa: F401
                                PlainConvEncoder)
from ae_jax.models.convnet import ConvNetDecoder, ConvNetEncoder  # noqa: F401
from ae_jax.models.dense import (IMAGE_SHAPE, DenseDecoder, DenseEncoder,  # noqa: F401
                                 MLPDecoder, MLPEncoder)
from ae_jax.models.layers import PatchConv, UpsampleConv, max_pool_2x2, upsample_2x  # noqa: F401
from ae_jax.models.registry import (DECODERS, ENCODERS, build, checked_autoencoder,  # noqa: F401
                                    code_shape, lecture_model,
                                    make_autoencoder as from_config, shape_rngs)
from ae_jax.models.sparse import SparseEncoder  # noqa: F401
from ae_jax.models.vae import VAEEncoder  # noqa: F401
from ae_jax.models.vq import VQEncoder  # noqa: F401


# The lecture's two models by their old names ('dense', 'conv'): benchmarks use these.
def make_autoencoder(model: str, latent_dim: int = 64,
                     image_shape: Sequence[int] = IMAGE_SHAPE) -> Autoencoder:
  """The lecture's autoencoder of kind `model` ('dense' or 'conv')."""
  return from_config(lecture_model(model, latent_dim), image_shape)


def make_encoder(model: str, latent_dim: int = 64) -> nn.Module:
  return make_autoencoder(model, latent_dim).encoder


def make_decoder(model: str, image_shape: Sequence[int] = IMAGE_SHAPE) -> nn.Module:
  return make_autoencoder(model, 64, image_shape).decoder
