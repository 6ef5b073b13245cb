"""Images of any sizes to a hyperprior codec's bitstreams and back (ae_jax/models/hyperprior.py;
the file format: ae_jax/compression/hyper_codes.py; the tables and streams:
ae_jax/compression/latent_coding.py).

Encoding, per batch of images of one size:
    y, z = g_a(x), h_a(y);  ẑ = round(z);  (σ, μ) = h_s(ẑ);  symbols = round(y - μ)
    each image's stream: ẑ with z's learned tables, then the symbols with the Gaussian
    table of each σ's scale index.
Decoding reads each image's ẑ, runs the same h_s on the same batch of images (the file
keeps the batch size: the same XLA computation on the same inputs gives the same floats,
so the same scale indices), reads the symbols, and gives g_s(symbols + μ) at the image's
own size. A decode that went astray anyway — another machine's h_s rounding a σ across a
table boundary — fails loudly on the symbols' CRC, never silently.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ae_jax.compression import entropy_coding, hyper_codes, latent_coding
from ae_jax.core.errors import UserError

Z_RADIUS = 255  # z's tables are built from its density over -255..255 (the rest escapes)
REDO = "encode the images again (python -m ae_jax.compress encode ...)"


@functools.lru_cache(maxsize=2)
def _gaussian(lo: float, hi: float, levels: int, tail: float):
  """(scale table, Gaussian tables, their models, their CRC), built once per process."""
  table = latent_coding.scale_table(lo, hi, levels)
  tables = latent_coding.gaussian_tables(table, tail)
  return table, tables, latent_coding.Models(tables), latent_coding.tables_crc32(tables)


def batches_by_size(shapes: Sequence[tuple[int, ...]], batch_size: int) -> list[list[int]]:
  """Image indices in batches of one size: sizes in order of first appearance, images in
  order within a size, `batch_size` at most (encoder and decoder batch alike)."""
  groups: dict[tuple, list[int]] = {}
  for i, shape in enumerate(shapes):
    groups.setdefault(tuple(shape), []).append(i)
  return [idx[k:k + batch_size] for idx in groups.values()
          for k in range(0, len(idx), batch_size)]


def _channel_groups(shape: Sequence[int]) -> np.ndarray:
  """The table of each value of a flattened [h, w, C] grid coded per channel."""
  return np.tile(np.arange(shape[-1]), int(np.prod(shape[:-1])))


class _Functions:
  """The jitted pieces of a restored encoder (and decoder) that coding calls: one trace per
  model and shape per process (ae_jax/models/compiled.py), the weights arguments."""

  def __init__(self, encoder, enc_vars, decoder=None, dec_vars=None):
    from ae_jax.models import compiled  # pylint: disable=import-outside-toplevel  (JAX)
    latents, params = compiled.apply("latents"), compiled.apply("gaussian_params", static=(1,))
    rate = compiled.apply(reported=("losses", "rate"))
    self.latents = lambda x: latents(encoder, enc_vars, x)
    self.rate = lambda x: rate(encoder, enc_vars, x)[1]
    self.params = lambda z, y_shape: params(encoder, enc_vars, z, y_shape)
    self._decoder, self._dec_vars = decoder, dec_vars
    self._synthesis = compiled.apply(sigmoid=True)

  def synthesis(self, image_shape: tuple[int, ...]):
    """sigmoid(g_s(ŷ)) at `image_shape` (g_s's image_shape field, where it has one)."""
    dec = self._decoder
    if "image_shape" in type(dec).__dataclass_fields__:
      dec = dec.clone(image_shape=tuple(image_shape))
    return lambda y: self._synthesis(dec, self._dec_vars, y)


def z_tables(encoder, variables) -> entropy_coding.Tables:
  """z's integer tables (with escapes) from a restored hyperprior encoder's density."""
  pmf = encoder.apply(variables, -Z_RADIUS, Z_RADIUS, method="pmf")
  return latent_coding.learned_tables(np.asarray(pmf, np.float64), -Z_RADIUS)


def encode(encoder, variables, images: Sequence[np.ndarray], about: dict,
           batch_size: int = 1000) -> hyper_codes.HyperCodes:
  """The codes of uint8 images (each [H, W, C], any H and W) by a restored hyperprior
  encoder; `about` gives the codes' model, run and names."""
  fns = _Functions(encoder, variables)
  table, _, g_models, g_crc = _gaussian(latent_coding.SCALE_MIN, latent_coding.SCALE_MAX,
                                        latent_coding.SCALE_LEVELS, latent_coding.TAIL_MASS)
  tables = z_tables(encoder, variables)
  z_models = latent_coding.Models(tables)
  n = len(images)
  streams, symbols, latents = [None] * n, [None] * n, [None] * n
  estimated = np.zeros(n, np.float64)
  shapes = [tuple(int(d) for d in im.shape) for im in images]
  for batch in batches_by_size(shapes, batch_size):
    x = np.stack([images[i] for i in batch]).astype(np.float32) / 255.0
    y, z = (np.asarray(a) for a in fns.latents(x))
    if not (np.isfinite(y).all() and np.isfinite(z).all()):
      raise UserError("the encoder gave non-finite codes (NaN or Inf): the run diverged; "
                      "train it again with a lower --config.learning_rate")
    z_hat = np.rint(z)
    scales, means = (np.asarray(a) for a in fns.params(z_hat, tuple(y.shape[1:])))
    index = latent_coding.scale_indexes(scales, table)
    y_sym = np.rint(y - means)
    estimated[batch] = np.asarray(fns.rate(x))
    for k, i in enumerate(batch):
      zs, ys = z_hat[k].astype(np.int64), y_sym[k].astype(np.int64)
      streams[i] = latent_coding.encode_image([
          (zs, _channel_groups(zs.shape), z_models), (ys, index[k], g_models)])
      symbols[i] = (zs.astype(np.int32), ys.astype(np.int32))
      latents[i] = (tuple(zs.shape), tuple(ys.shape))
  return hyper_codes.HyperCodes(
      model=about["model"], run=about["run"], names=about["names"], image_shapes=shapes,
      latent_shapes=latents, tables=tables, streams=streams,
      coder=entropy_coding.coder_version(),
      symbols_crc32=latent_coding.symbols_crc32(symbols),
      scales={"min": latent_coding.SCALE_MIN, "max": latent_coding.SCALE_MAX,
              "levels": latent_coding.SCALE_LEVELS, "tail_mass": latent_coding.TAIL_MASS,
              "tables_crc32": g_crc},
      batch_size=int(batch_size), mean_scale=bool(getattr(encoder, "mean_scale", False)),
      estimated_bits=estimated, symbols=symbols)


def decode(codes: hyper_codes.HyperCodes, encoder, enc_vars, decoder, dec_vars,
           path: str = "the codes") -> list[np.ndarray]:
  """Images in [0, 1], one float32 [H, W, C] per image of `codes`, by the restored encoder
  (h_s only) and decoder of the run that made them."""
  s = codes.scales
  table, g_tables, g_models, _ = _gaussian(float(s["min"]), float(s["max"]), int(s["levels"]),
                                           float(s["tail_mass"]))
  if latent_coding.tables_crc32(g_tables) != int(s["tables_crc32"]):  # other float64 maths
    raise UserError(f"{path}: the Gaussian tables built here differ from the encoder's: "
                    f"decode on the machine that encoded, or {REDO}")
  fns = _Functions(encoder, enc_vars, decoder, dec_vars)
  z_models = latent_coding.Models(codes.tables)
  readers = [latent_coding.StreamReader(data) for data in codes.streams]
  out, symbols = [None] * codes.num_images, [None] * codes.num_images
  try:
    for batch in batches_by_size(codes.image_shapes, codes.batch_size):
      z_shape, y_shape = codes.latent_shapes[batch[0]]
      groups = _channel_groups(z_shape)
      z_hat = np.stack([readers[i].part(groups, z_models).reshape(z_shape) for i in batch])
      scales, means = (np.asarray(a) for a in fns.params(z_hat.astype(np.float32),
                                                         tuple(y_shape)))
      index = latent_coding.scale_indexes(scales, table)
      y_sym = np.stack([readers[i].part(index[k], g_models).reshape(y_shape)
                        for k, i in enumerate(batch)])
      images = np.asarray(fns.synthesis(tuple(codes.image_shapes[batch[0]]))(
          y_sym.astype(np.float32) + means))
      for k, i in enumerate(batch):
        out[i], symbols[i] = images[k], (z_hat[k], y_sym[k])
  except (AssertionError, ValueError, RuntimeError) as e:  # the coder's own complaint
    raise UserError(f"{path}: the bitstreams do not decode ({type(e).__name__}: {e}): "
                    f"{REDO}") from None
  if latent_coding.symbols_crc32(symbols) != codes.symbols_crc32:
    ours, theirs = entropy_coding.coder_version(), codes.coder
    why = (f" (it was written by {theirs}, this is {ours}: decode with {theirs})"
           if theirs != ours else " (h_s computed other scales here than when encoding)")
    raise UserError(f"{path}: the decoded symbols do not match the encoded ones{why}: {REDO}")
  return out
