"""Vector-quantized encoder (VQ-VAE, van den Oord et al. 2017): a conv analysis transform
to a grid of D-dim vectors z_e, each replaced by its nearest of `codebook_size` (K)
codebook vectors. The code is z_q, the chosen codebook rows, exactly (its values are the
codebook's: the compression tools store them as indices, ae_jax/compression/codes.py 'index').

Gradients: straight-through, z_q = sg(e) + (z_e - sg(z_e)): the value is e bit for bit,
the gradient reaches z_e as if z_q were z_e. Loss terms, per image (mean over positions
and dims), sown as `losses`:
  commitment  ||z_e - sg(e)||^2 (weight 0.25 in configs/vqvae.py: `loss_weights`);
  codebook    ||sg(z_e) - e||^2, only for codebook_update='loss'.
Metrics (`metrics`, one value per batch given to each image): `perplexity`,
exp(entropy of the batch's code histogram), and `usage`, the fraction of codes used.

Codebook updates outside the gradient (codebook_update='ema', and resetting dead codes):
the train state stays (params, opt_state). The codebook, and in 'ema' mode its moving
averages, are parameters; those the optimizer must not move get no gradient (Adam's
update of a zero gradient is exactly 0). In the train step (and only there: the step
makes the collection 'param_deltas' mutable) the module writes, per parameter, what to
add to it after the optimizer's update (ae_jax/training/steps.py). So checkpoints, the encoder
item (all decoding needs) and exact resumes are those of any model, and the batch
statistics are those of the global batch on any number of devices (one jit program).
  'ema'  (Sonnet's VectorQuantizerEMA, the paper's appendix): N_k <- d N_k + (1-d) n_k,
         m_k <- d m_k + (1-d) sum of the z_e assigned to k; e_k = m_k / N~_k with the
         Laplace-smoothed N~_k = (N_k + eps) / (sum N + K eps) * sum N. N starts at 1 and
         m at the initial codebook (Jukebox, Dhariwal et al. 2020), so e starts there.
  dead codes: a code unused in `dead_code_after` consecutive train steps is set to a
         random z_e of the current batch (Jukebox's random restart; the choice is drawn
         from the step's 'sample' key: a function of (seed, step), exact on resume); in
         'ema' mode its N_k restarts at 1 and m_k at that z_e. 0 turns this off.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks
from ae_jax.models.autoencoder import DELTAS  # what the train step adds to params
from ae_jax.models.convnet import ConvNetEncoder

UPDATES = ("loss", "ema")
LAPLACE_EPS = 1e-5


def nearest(z_MxD: jax.Array, codebook_KxD: jax.Array) -> jax.Array:
  """Index of the nearest codebook row (squared Euclidean) of each row of z, int32 [M];
  ties go to the lower index.

  The same index as `jnp.argmin` over the rows of the [M, K] distance table, computed on
  its transpose [K, M] in two passes: the minimum, then the lowest index that reaches it.
  Both reduce along the major axis, which XLA:CPU vectorizes; its argmin along a 512-wide
  minor axis is a scalar loop over (value, index) pairs. The VQ-VAE step's 6272 x 512
  table: 14.0 -> 5.0 ms alone, and the step with the row-wise argmin took 1.10-1.15x as
  long (one thread, interleaved: `python benchmarks/step_forms.py --model vqvae --forms
  preset,argmin`, docs/performance.md). Rows with NaN distances (a diverged model) get
  index K - 1, never one past the codebook.
  """
  k = codebook_KxD.shape[0]
  d_KxM = (jnp.sum(z_MxD**2, 1)[None] - 2 * codebook_KxD @ z_MxD.T
           + jnp.sum(codebook_KxD**2, 1)[:, None])
  best_M = jnp.min(d_KxM, axis=0)
  index_K = jnp.arange(k, dtype=jnp.int32)[:, None]
  first = jnp.min(jnp.where(d_KxM == best_M, index_K, k), axis=0)
  return jnp.minimum(first, k - 1).astype(jnp.int32)


def straight_through(z_e: jax.Array, e: jax.Array) -> jax.Array:
  """Value e (exactly), gradient to z_e as the identity, none to e."""
  return jax.lax.stop_gradient(e) + (z_e - jax.lax.stop_gradient(z_e))


def perplexity(counts_K: jax.Array) -> jax.Array:
  """exp(entropy) of the histogram `counts`: K for uniform use, 1 for one code."""
  p = counts_K / jnp.maximum(counts_K.sum(), 1.0)
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def ema_codebook(cluster_K: jax.Array, embed_sum_KxD: jax.Array) -> jax.Array:
  """e_k = m_k / N~_k, N~ the Laplace-smoothed counts (Sonnet's VectorQuantizerEMA)."""
  n = cluster_K.sum()
  smoothed = (cluster_K + LAPLACE_EPS) / (n + cluster_K.shape[0] * LAPLACE_EPS) * n
  return embed_sum_KxD / smoothed[:, None]


class VQEncoder(nn.Module):
  """Image -> ConvNetEncoder (features, ..., `code_dim` channels) -> nearest codebook
  vectors. Code shape (ceil(H / 2^d), ceil(W / 2^d), code_dim) for d = len(features)."""
  features: Sequence[int] = (32, 64)
  code_dim: int = 16
  codebook_size: int = 512
  codebook_update: str = "ema"  # 'ema' or 'loss'
  ema_decay: float = 0.99
  dead_code_after: int = 100  # train steps unused before a code is reset; 0 = never
  kernel_size: int = 3
  downsample: str = "stride"
  norm: str = "none"
  activation: str = "relu"
  dtype: Any = jnp.float32

  def __post_init__(self):
    checks.positive_int(self, "code_dim")
    checks.positive_int(self, "codebook_size")
    if self.codebook_size < 2:
      raise checks.BadField("codebook_size", "an integer >= 2 (1 code carries no information)")
    checks.one_of(self, "codebook_update", UPDATES)
    if not (isinstance(self.ema_decay, (int, float)) and not isinstance(self.ema_decay, bool)
            and 0.0 <= self.ema_decay < 1.0):
      raise checks.BadField("ema_decay", "a number in [0, 1)")
    checks.int_at_most(self, "dead_code_after", 0,
                       "an integer >= 0 (train steps; 0 = never reset)")
    super().__post_init__()

  def setup(self):
    self.analysis = ConvNetEncoder(
        features=self.features, latent_channels=self.code_dim, kernel_size=self.kernel_size,
        downsample=self.downsample, norm=self.norm, activation=self.activation,
        dtype=self.dtype)
    k, d = self.codebook_size, self.code_dim
    # Unit-variance rows for unit-scale z_e: uniform +-sqrt(3 / D).
    init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform", in_axis=1, out_axis=0)
    self.codebook = self.param("codebook", init, (k, d), jnp.float32)
    self.steps_unused = self.param("steps_unused", nn.initializers.zeros, (k,), jnp.float32)
    if self.codebook_update == "ema":
      self.ema_cluster_size = self.param("ema_cluster_size", nn.initializers.ones, (k,),
                                         jnp.float32)
      self.ema_embed_sum = self.param("ema_embed_sum", lambda *_: self.codebook)

  def quantize(self, z_e_BxhxwxD: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(indices int32 [B, h, w], z_q float32 [B, h, w, D]) of the encoder's outputs z_e."""
    z = jax.lax.stop_gradient(z_e_BxhxwxD.astype(jnp.float32))
    idx = nearest(z.reshape(-1, self.code_dim), self.codebook).reshape(z.shape[:-1])
    return idx, self.codebook[idx]

  def indices(self, x_BxHxWxC: jax.Array) -> jax.Array:
    """The code as codebook indices, int32 [B, h, w] (what the compression tools store)."""
    return self.quantize(self.analysis(x_BxHxWxC))[0]

  def get_codebook(self) -> jax.Array:
    """The codebook [K, D], float32: z_q = codebook[indices]."""
    return self.codebook

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    z_e = self.analysis(x_BxHxWxC).astype(jnp.float32)
    idx, e = self.quantize(z_e)
    per_image = lambda sq: sq.reshape(sq.shape[0], -1).mean(axis=1)
    self.sow("losses", "commitment", per_image(jnp.square(z_e - jax.lax.stop_gradient(e))))
    if self.codebook_update == "loss":
      self.sow("losses", "codebook", per_image(jnp.square(jax.lax.stop_gradient(z_e) - e)))
    counts = jnp.zeros((self.codebook_size,), jnp.float32).at[idx.reshape(-1)].add(1.0)
    batch = jnp.ones((x_BxHxWxC.shape[0],), jnp.float32)
    self.sow("metrics", "perplexity", perplexity(counts) * batch)
    self.sow("metrics", "usage", jnp.mean(counts > 0) * batch)
    if self.is_mutable_collection(DELTAS) and not self.is_initializing():
      self._update(jax.lax.stop_gradient(z_e).reshape(-1, self.code_dim), idx.reshape(-1),
                   counts)
    return straight_through(z_e, e).astype(self.dtype)

  def _update(self, z_MxD: jax.Array, idx_M: jax.Array, counts_K: jax.Array) -> None:
    """Writes the train step's additions to the codebook and its statistics."""
    k = self.codebook_size
    unused = jnp.where(counts_K > 0, 0.0, self.steps_unused + 1.0)
    if self.dead_code_after:
      dead = unused >= self.dead_code_after
      pick = jax.random.randint(self.make_rng("sample"), (k,), 0, z_MxD.shape[0])
      restart = z_MxD[pick]  # a random z_e of the batch for each code (used where dead)
      unused = jnp.where(dead, 0.0, unused)
    else:
      dead, restart = jnp.zeros((k,), bool), jnp.zeros((k, self.code_dim), jnp.float32)
    if self.codebook_update == "ema":
      d = self.ema_decay
      sums = jnp.zeros_like(self.ema_embed_sum).at[idx_M].add(z_MxD)
      cluster = jnp.where(dead, 1.0, d * self.ema_cluster_size + (1 - d) * counts_K)
      embed_sum = jnp.where(dead[:, None], restart, d * self.ema_embed_sum + (1 - d) * sums)
      codebook = ema_codebook(cluster, embed_sum)
      self.put_variable(DELTAS, "ema_cluster_size", cluster - self.ema_cluster_size)
      self.put_variable(DELTAS, "ema_embed_sum", embed_sum - self.ema_embed_sum)
    else:  # the loss trains the codebook; only dead rows are set
      codebook = jnp.where(dead[:, None], restart, self.codebook)
    self.put_variable(DELTAS, "codebook", codebook - self.codebook)
    self.put_variable(DELTAS, "steps_unused", unused - self.steps_unused)


def is_vq_encoder(cls: type) -> bool:
  """Whether an encoder class gives integer codes (`indices` and `get_codebook`)."""
  return callable(getattr(cls, "indices", None)) and callable(getattr(cls, "get_codebook", None))
