"""A hyperprior codec's codes (`HyperCodes`) and their part of the codes file: format
version 4, written for hyperprior runs only (ae_jax/compression/codes.py frames it: magic,
version, header and payload checksums; older files keep their versions and are read as
before; an ae_jax that reads only 1 to 3 refuses these with its one-line message).

Images may differ in size: the header lists the distinct image sizes (`sizes`, [H, W, C])
and each one's latent shapes (`latent_shapes`: [z shape, y shape]); the payload holds
    table_lo, table_size, table_freq   z's integer tables (one per channel, an escape
                                       symbol last: latent_coding.learned_tables; the
                                       frequencies as uint16, each below 2**16)
    size_index                         uint16 [N], each image's entry of `sizes` (only
                                       when there are several)
    streams                            one stream per image, each after its varint length
and the header adds `coder`, `table_precision`, `symbols_crc32` (every image's ẑ then y
symbols), `scales` (the scale table: min, max, levels, tail mass, and the CRC-32 of the
Gaussian tables built from it), `batch_size` (how many images of one size h_s ran on at
once: decoding runs it on the same batches) and `mean_scale`. No JAX here: y's symbols
need h_s(ẑ) to be read, so the streams are decoded, and the CRC checked, by
ae_jax/compression/hyper_codec.py.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ae_jax.compression import entropy_coding
from ae_jax.core.errors import UserError

VERSION = 4
ENTROPY = "entropy"  # the quantization a user asks for (as the factorized codec's)


@dataclasses.dataclass
class HyperCodes:
  """Entropy-coded ẑ and y of N images of any sizes, and what decoding them needs."""
  model: str
  run: dict
  image_shapes: list[tuple[int, int, int]]  # per image
  latent_shapes: list[tuple[tuple[int, ...], tuple[int, ...]]]  # per image: (z, y) shapes
  tables: entropy_coding.Tables  # z's
  streams: list[bytes]
  coder: str
  symbols_crc32: int
  scales: dict  # {"min", "max", "levels", "tail_mass", "tables_crc32"}
  batch_size: int
  mean_scale: bool
  names: list[str] | None = None
  # from encode only (not stored): the model's own -log2 P per image, and the symbols
  estimated_bits: np.ndarray | None = None
  symbols: list[tuple[np.ndarray, np.ndarray]] | None = None
  quant: str = ENTROPY
  clipped: int = 0  # nothing is clipped: values outside a table are escaped

  @property
  def num_images(self) -> int:
    return len(self.streams)

  @property
  def bytes_per_image(self) -> float:
    """Mean bytes of one image's stream and its length prefix (the header not counted)."""
    return float(entropy_coding.framed_sizes(self.streams).mean()) if self.streams else 0.0

  @property
  def image_shape(self) -> tuple[int, ...]:
    """The first image's shape (all of them: `image_shapes`)."""
    return tuple(self.image_shapes[0])

  @property
  def code_shape(self) -> tuple[int, ...]:
    """The first image's y shape (what the tools' labels show)."""
    return tuple(self.latent_shapes[0][1])

  @property
  def latent_dim(self) -> int:
    return int(np.prod(self.code_shape))

  @property
  def raw_bytes_per_image(self) -> float:
    return float(np.mean([np.prod(s) for s in self.image_shapes]))


def _sizes(codes: HyperCodes) -> tuple[list, list, np.ndarray]:
  """(distinct sizes in order of appearance, their latent shapes, each image's index)."""
  sizes, latents, index = [], [], []
  for shape, latent in zip(codes.image_shapes, codes.latent_shapes):
    key = [int(d) for d in shape]
    if key not in sizes:
      sizes.append(key)
      latents.append([[int(d) for d in s] for s in latent])
    index.append(sizes.index(key))
  return sizes, latents, np.asarray(index, np.uint16)


def file_parts(codes: HyperCodes) -> tuple[list[tuple[str, np.ndarray]], dict]:
  """(named arrays of the payload, header fields) of `codes` (codes.py writes them)."""
  problem = inconsistency(codes)
  if problem:
    raise ValueError(f"codes not written: {problem}")
  sizes, latents, index = _sizes(codes)
  if len(sizes) > np.iinfo(np.uint16).max:
    raise ValueError("codes not written: more than 65535 image sizes in one file")
  t = codes.tables
  # Every row has at least two symbols (the escape): no frequency reaches 2**16.
  arrays = [("table_lo", t.lo), ("table_size", t.size), ("table_freq", t.freq.astype(np.uint16))]
  if len(sizes) > 1:
    arrays.append(("size_index", index))
  arrays.append(("streams", np.frombuffer(entropy_coding.frame(codes.streams), np.uint8)))
  header = {
      "model": codes.model, "quant": ENTROPY, "entropy_model": "hyperprior",
      "mean_scale": codes.mean_scale, "num_images": codes.num_images, "run": codes.run,
      "names": codes.names, "sizes": sizes, "latent_shapes": latents,
      "image_shape": sizes[0], "code_shape": latents[0][1],
      "latent_dim": int(np.prod(latents[0][1])),
      "coder": codes.coder, "table_precision": entropy_coding.PRECISION,
      "symbols_crc32": codes.symbols_crc32, "scales": codes.scales,
      "batch_size": codes.batch_size,
  }
  return arrays, header


def from_file(path: str, header: dict, parts: dict, redo: str) -> HyperCodes:
  """The codes of a version 4 file's header and arrays; UserError if they do not fit."""
  try:
    tables = entropy_coding.Tables(lo=parts["table_lo"].astype(np.int32),
                                   size=parts["table_size"].astype(np.int32),
                                   freq=parts["table_freq"].astype(np.uint32))
    problem = tables.check()
    if problem or int(header.get("table_precision", -1)) != entropy_coding.PRECISION:
      raise UserError(f"{path} has unusable probability tables ({problem or 'precision'}): "
                      f"{redo}")
    count = int(header["num_images"])
    sizes = [tuple(int(d) for d in s) for s in header["sizes"]]
    latents = [tuple(tuple(int(d) for d in s) for s in pair) for pair in header["latent_shapes"]]
    index = parts["size_index"].astype(np.int64) if "size_index" in parts \
        else np.zeros(count, np.int64)
    if len(sizes) != len(latents) or len(index) != count or (
        count and (index.min() < 0 or index.max() >= len(sizes))):
      raise ValueError("sizes and images do not match")
    try:
      streams = entropy_coding.unframe(parts["streams"].tobytes(), count)
    except ValueError as e:
      raise UserError(f"{path} has corrupt bitstreams ({e}): {redo}") from None
    codes = HyperCodes(
        model=header["model"], run=dict(header["run"]),
        image_shapes=[sizes[i] for i in index], latent_shapes=[latents[i] for i in index],
        tables=tables, streams=streams, coder=header["coder"],
        symbols_crc32=int(header["symbols_crc32"]), scales=dict(header["scales"]),
        batch_size=int(header["batch_size"]), mean_scale=bool(header["mean_scale"]),
        names=header.get("names"))
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"{path} has a corrupt header ({type(e).__name__}: {e}): {redo}") from None
  problem = inconsistency(codes)
  if problem:
    raise UserError(f"{path} has a corrupt header ({problem}): {redo}")
  return codes


def inconsistency(codes: HyperCodes) -> str | None:
  """What in `codes` does not fit together (None if all does)."""
  n = codes.num_images
  if not n:
    return "no images"
  if len(codes.image_shapes) != n or len(codes.latent_shapes) != n:
    return f"{len(codes.image_shapes)} image shapes for {n} streams"
  if any(len(s) != 3 or min(s) < 1 for s in codes.image_shapes):
    return "image shapes that are not (H, W, C)"
  if any(len(z) != 3 or len(y) != 3 or z[-1] != codes.tables.channels
         for z, y in codes.latent_shapes):
    return f"latent shapes that do not fit z's {codes.tables.channels} tables"
  t = codes.tables
  if t.freq.size and (t.size.min() < 2 or t.freq.max() >= 1 << 16):
    return "z tables without their escape symbol"
  if codes.names is not None and (len(codes.names) != n
                                  or not all(isinstance(x, str) for x in codes.names)):
    return f"names that are not {n} strings"
  if not (isinstance(codes.batch_size, int) and codes.batch_size >= 1):
    return "a batch size that is not a positive integer"
  if not {"min", "max", "levels", "tail_mass", "tables_crc32"} <= set(codes.scales):
    return "no scale table"
  return None

