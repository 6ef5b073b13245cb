"""Quantized codes and the codes file (".aec"): what `python -m ae_jax.compress` writes.

Codes are stored as float32, float16 or uint8 (per-dimension affine: code_d ~ offset_d +
scale_d * q, q in 0..255), or, for a VQ-VAE's codes (rows of its codebook), as 'index':
each position's codebook index in ceil(log2 K) bits, packed MSB first, each image's bits
padded to whole bytes; the codebook [K, D] float32 goes in the payload once, like a
JPEG's shared tables, so decoding needs the decoder alone and gives back exactly the
encoder's code. The file, all little-endian:
    8 bytes   magic b"AECODES" + format version byte (2; 3 for 'index' and 'entropy')
    4 bytes   uint32 length H of the header
    4 bytes   uint32 CRC-32 of the header's H bytes
    H bytes   UTF-8 JSON header: model, latent_dim, code_shape, image_shape, quant, num_images,
              the run (workdir, config hash, checkpoint step and id), optional image names,
              and the list of arrays (name, dtype, shape) with the payload's length and CRC-32.
              `model` is the run's model label ('dense', 'conv', 'sparse+dense'...);
              `latent_dim` the number of values in one code (files written before the
              model zoo hold the run's latent_dim field there, which a conv code ignored)
    payload   the arrays, C order, one after the other (offset and scale first for uint8,
              the codebook first for index)
Version 1 files (no header CRC: a header altered into other valid JSON went unnoticed) are
still read.

Version 3 (written for `index` and `entropy` codes only; the other kinds stay version 2).
`entropy`: a learned codec's integer codes, entropy coded (ae_jax/compression/entropy_coding.py). Its
arrays are the
integer tables (`table_lo`, `table_size`, `table_freq`: shared by every image, like JPEG's
tables) and `streams`: one range-coded stream per image, each after its varint length.
The header adds `coder` (the entropy coder and its version) and `symbols_crc32`, checked
after decoding: a decode that went astray fails loudly instead of giving other pixels.
Version 4 (written for a hyperprior codec's `entropy` codes only): images of any sizes, z's
tables, one stream per image of ẑ and y (ae_jax/compression/hyper_codes.py, which reads and
writes its header fields and arrays; framed as above).
No JAX here: reading and writing codes needs numpy (and constriction for `entropy`) only.
"""
from __future__ import annotations

import dataclasses
import json
import struct
import zlib

import numpy as np

from ae_jax.compression import entropy_coding, hyper_codes
from ae_jax.core.errors import UserError

QUANTS = ("float32", "float16", "uint8")  # fixed-length codes of any float code
INDEX = "index"  # a VQ-VAE's codebook indices
ENTROPY = "entropy"  # a learned codec's integer codes, entropy coded
ALL_QUANTS = QUANTS + (INDEX, ENTROPY)
MAGIC = b"AECODES"
VERSION = 2
# Files of index or entropy codes: an ae_jax that reads only 1 and 2 refuses them.
INDEX_VERSION = ENTROPY_VERSION = 3
_PREFIX = struct.Struct("<7sBI")  # magic, version, header length
_HEADER_CRC = struct.Struct("<I")  # version 2 on: the header's CRC-32, after the prefix
_FLOAT16_MAX = float(np.finfo(np.float16).max)


# ------------------------------------------------------------------------ quantization

def check_finite(codes: np.ndarray) -> np.ndarray:
  """`codes`, refused (UserError) if any is NaN or Inf: the run that made them diverged."""
  if not np.isfinite(codes).all():
    raise UserError("the encoder gave non-finite codes (NaN or Inf): the run diverged; "
                    "train it again with a lower --config.learning_rate")
  return codes


def quantize(codes_NxD: np.ndarray, quant: str) -> tuple[np.ndarray, np.ndarray | None,
                                                         np.ndarray | None]:
  """(stored values, offset [D] or None, scale [D] or None) of float codes [N, D]."""
  codes_NxD = check_finite(np.asarray(codes_NxD, np.float32))
  if quant == "float32":
    return codes_NxD, None, None
  if quant == "float16":
    peak = float(np.abs(codes_NxD).max(initial=0.0))
    if peak > _FLOAT16_MAX:
      raise UserError(f"a code value ({peak:.3g}) exceeds float16's range: use "
                      "--quant float32 or uint8")
    return codes_NxD.astype(np.float16), None, None
  if quant == ENTROPY:
    raise UserError("entropy codes come from a learned codec's own prior: encode with "
                    "ae_jax.compression.compress.encode(..., 'entropy') (a run of configs/codec.py)")
  if quant == "uint8":
    lo, hi = codes_NxD.min(axis=0), codes_NxD.max(axis=0)
    # A dimension with one value keeps it exactly in `offset` (q = 0); avoid dividing by 0.
    scale = np.where(hi > lo, (hi - lo) / 255.0, 1.0).astype(np.float32)
    q = np.clip(np.rint((codes_NxD - lo) / scale), 0, 255).astype(np.uint8)
    return q, lo.astype(np.float32), scale
  raise UserError(f"unknown quantization {quant!r}: choose one of {', '.join(QUANTS)}")


def dequantize(values: np.ndarray, offset: np.ndarray | None,
               scale: np.ndarray | None) -> np.ndarray:
  """float32 codes [N, D] from stored values."""
  if values.dtype == np.uint8:
    return offset + values.astype(np.float32) * scale
  return values.astype(np.float32)


def error_bound(codes_NxD: np.ndarray, quant: str, scale: np.ndarray | None = None) -> np.ndarray:
  """Largest |dequantize(quantize(z)) - z| per element that `quant` allows.

  float16 rounds to nearest (relative error <= 2^-11, absolute 2^-25 for subnormals); uint8
  rounds to the nearest of 256 levels, scale_d apart. The small extra terms cover float32
  arithmetic in the dequantization.
  """
  z = np.abs(np.asarray(codes_NxD, np.float32))
  if quant == "float32":
    return np.zeros_like(z)
  if quant == "float16":
    return z * 2.0**-11 + 2.0**-24
  # offset + q * scale in float32: a few ulps of |offset| + 255 scale <= |z| + 510 scale.
  return scale / 2 + 2.0**-21 * (z + 510 * scale)


def index_bits(codebook_size: int) -> int:
  """Bits per position of an index code: ceil(log2 K)."""
  return max(1, int(codebook_size - 1).bit_length())


def pack_indices(indices_NxP: np.ndarray, codebook_size: int) -> np.ndarray:
  """uint8 [N, ceil(P * bits / 8)]: each image's P indices in `index_bits` bits, MSB first."""
  bits = index_bits(codebook_size)
  idx = np.asarray(indices_NxP, np.int64)
  if idx.size and (idx.min() < 0 or idx.max() >= codebook_size):
    raise ValueError(f"indices outside 0..{codebook_size - 1}")
  planes = (idx[..., None] >> np.arange(bits - 1, -1, -1)) & 1
  return np.packbits(planes.reshape(len(idx), -1).astype(np.uint8), axis=1)


def unpack_indices(values_NxB: np.ndarray, positions: int, codebook_size: int) -> np.ndarray:
  """int64 [N, positions] from `pack_indices`' bytes."""
  bits = index_bits(codebook_size)
  planes = np.unpackbits(values_NxB, axis=1, count=positions * bits)
  return planes.reshape(len(values_NxB), positions, bits).astype(np.int64) @ (
      1 << np.arange(bits - 1, -1, -1))


def _positions(code_shape) -> int:
  """Positions of an index code: its shape less the last (vector) axis."""
  return int(np.prod(code_shape[:-1]))


# ------------------------------------------------------------------------- codes

@dataclasses.dataclass
class Codes:
  """Quantized codes of N images and what is needed to decode them."""
  values: np.ndarray  # [N, D]: float32, float16 or uint8
  quant: str
  model: str
  latent_dim: int
  code_shape: tuple[int, ...]
  image_shape: tuple[int, ...]
  run: dict  # {"workdir", "config_hash", "step"}: the run (and checkpoint) that encoded
  offset: np.ndarray | None = None  # [D] float32, uint8 only
  scale: np.ndarray | None = None
  names: list[str] | None = None  # image names (from a PNG folder), for decode's file names
  codebook: np.ndarray | None = None  # [K, D] float32, index only
  # entropy only: the integer tables, one stream per image, the coder that made them
  tables: entropy_coding.Tables | None = None
  streams: list[bytes] | None = None
  coder: str | None = None
  # entropy, from encode only (not stored): the model's own -log2 P(ŷ) per image, and how
  # many values fell outside the tables' range (clipped to it)
  estimated_bits: np.ndarray | None = None
  clipped: int = 0

  @property
  def num_images(self) -> int:
    return len(self.values)

  @property
  def bytes_per_image(self) -> float:
    """Bytes of one image's code (the header, shared by all images, is not counted); for
    entropy codes, the mean over the images of its stream and its length prefix."""
    if not len(self.values):
      return 0
    if self.quant == ENTROPY:
      return float(entropy_coding.framed_sizes(self.streams).mean())
    return int(self.values[0].nbytes)

  def dequantized(self) -> np.ndarray:
    """float32 codes [N, *code_shape], ready for the decoder."""
    if self.quant == INDEX:
      k = len(self.codebook)
      idx = unpack_indices(self.values, _positions(self.code_shape), k)
      return self.codebook[idx].reshape(len(idx), *self.code_shape)
    z = dequantize(self.values, self.offset, self.scale)
    return z.reshape(len(z), *self.code_shape)


def codes_to_bytes(codes: Codes | hyper_codes.HyperCodes) -> bytes:
  """The codes file's contents (see the module docstring for the format). Codes whose parts
  do not fit together are refused (ValueError): `load_codes` would not read them back."""
  if isinstance(codes, hyper_codes.HyperCodes):
    return _framed(*hyper_codes.file_parts(codes), hyper_codes.VERSION)
  problem = inconsistency(codes)
  if problem:
    raise ValueError(f"codes not written: {problem}")
  arrays = [("values", codes.values)]
  if codes.quant == "uint8":
    arrays = [("offset", codes.offset), ("scale", codes.scale)] + arrays
  if codes.quant == INDEX:
    arrays = [("codebook", codes.codebook)] + arrays
  extra = {}
  if codes.quant == ENTROPY:
    t = codes.tables
    streams = np.frombuffer(entropy_coding.frame(codes.streams), np.uint8)
    arrays = [("table_lo", t.lo), ("table_size", t.size), ("table_freq", t.freq),
              ("streams", streams)]
    extra = {"coder": codes.coder, "table_precision": entropy_coding.PRECISION,
             "symbols_crc32": entropy_coding.symbols_crc32(codes.values)}
  header = {
      "model": codes.model, "latent_dim": codes.latent_dim,
      "code_shape": list(codes.code_shape), "image_shape": list(codes.image_shape),
      "quant": codes.quant, "num_images": codes.num_images, "run": codes.run,
      "names": codes.names,
  }
  return _framed(arrays, header, INDEX_VERSION if codes.quant in (INDEX, ENTROPY) else VERSION,
                 extra)


def _framed(arrays: list[tuple[str, np.ndarray]], header: dict, version: int,
            extra: dict | None = None) -> bytes:
  """Prefix, header (`header`, the arrays' list, the payload's length and CRC, `extra`)
  and payload."""
  payload = b"".join(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
                     for _, a in arrays)
  header = {**header,
            "arrays": [{"name": n, "dtype": a.dtype.name, "shape": list(a.shape)}
                       for n, a in arrays],
            "payload_bytes": len(payload), "crc32": zlib.crc32(payload), **(extra or {})}
  blob = json.dumps(header, separators=(",", ":")).encode()
  return (_PREFIX.pack(MAGIC, version, len(blob)) + _HEADER_CRC.pack(zlib.crc32(blob)) + blob
          + payload)


def load_codes(path: str) -> Codes:
  """Reads a codes file, refusing (UserError) anything that is not one, whole and intact."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise UserError(f"cannot read codes file {path} ({e.strerror}): give a file written by "
                    "`python -m ae_jax.compress encode`") from None
  return codes_from_bytes(data, path)


def codes_from_bytes(data: bytes, path: str = "the codes") -> Codes:
  """The codes in a codes file's contents `data` (`path` names it in errors)."""
  redo = "encode the images again (python -m ae_jax.compress encode ...)"
  if len(data) < _PREFIX.size or not data.startswith(MAGIC):
    raise UserError(f"{path} is not an ae_jax codes file: give a file written by "
                    "`python -m ae_jax.compress encode`")
  _, version, header_len = _PREFIX.unpack_from(data)
  if version not in (1, VERSION, INDEX_VERSION, hyper_codes.VERSION):
    raise UserError(f"{path} has codes format version {version}; this ae_jax reads versions "
                    f"1 to {hyper_codes.VERSION}: {redo} with this version")
  at = _PREFIX.size + (_HEADER_CRC.size if version >= 2 else 0)
  start = at + header_len
  if len(data) < start:
    _refuse_a_damaged_header_length(data, at, header_len, path, redo)
    raise UserError(f"{path} is truncated (its header is cut short): {redo}")
  if version >= 2 and (zlib.crc32(data[at:start])
                      != _HEADER_CRC.unpack_from(data, _PREFIX.size)[0]):
    _refuse_a_damaged_header_length(data, at, header_len, path, redo)
    raise UserError(f"{path} is corrupted (its header's checksum does not match): {redo}")
  try:
    header = json.loads(data[at:start])
    arrays = [(a["name"], np.dtype(a["dtype"]).newbyteorder("<"), tuple(a["shape"]))
              for a in header["arrays"]]
    expected_len, crc = int(header["payload_bytes"]), int(header["crc32"])
  except (ValueError, KeyError, TypeError) as e:
    _refuse_a_damaged_header_length(data, at, header_len, path, redo)  # version 1: no CRC
    raise UserError(f"{path} has a corrupt header ({type(e).__name__}): {redo}") from None
  payload = data[start:]
  if len(payload) != expected_len:
    what = "truncated" if len(payload) < expected_len else "longer than its header says"
    raise UserError(f"{path} is {what} ({len(payload)} of {expected_len} payload bytes): {redo}")
  if zlib.crc32(payload) != crc:
    raise UserError(f"{path} is corrupted (its checksum does not match): {redo}")
  return _codes_from(path, header, arrays, payload, redo, version)


def _refuse_a_damaged_header_length(data: bytes, at: int, header_len: int, path: str,
                                    redo: str) -> None:
  """Raises UserError where the header-length field is what is wrong: the JSON header that
  starts at `at`, read by itself, is whole and ends elsewhere than the field says (a length
  field damaged to a large value read as a header cut short)."""
  try:  # JSON stops at its closing brace; the header is ASCII (json.dumps escapes the rest)
    _, length = json.JSONDecoder().raw_decode(data[at:].decode("latin-1"))
  except ValueError:
    return  # not whole JSON: the header itself is cut short or damaged
  if length != header_len:
    raise UserError(f"{path} has a damaged header-length field (it says {header_len} bytes; "
                    f"the header has {length}): {redo}")


def _codes_from(path: str, header: dict, arrays, payload: bytes, redo: str,
                version: int) -> Codes:
  parts, at = {}, 0
  try:
    for name, dtype, shape in arrays:
      n = int(np.prod(shape)) * dtype.itemsize
      parts[name] = np.frombuffer(payload, dtype, count=int(np.prod(shape)),
                                  offset=at).reshape(shape).astype(dtype.newbyteorder("="))
      at += n
    if version == hyper_codes.VERSION:
      return hyper_codes.from_file(path, header, parts, redo)
    if header["quant"] == ENTROPY and version == ENTROPY_VERSION:
      return _entropy_codes_from(path, header, parts, redo)
    codes = Codes(values=parts["values"], quant=header["quant"], model=header["model"],
                  latent_dim=int(header["latent_dim"]),
                  code_shape=tuple(int(d) for d in header["code_shape"]),
                  image_shape=tuple(int(d) for d in header["image_shape"]),
                  run=dict(header["run"]), offset=parts.get("offset"),
                  scale=parts.get("scale"), names=header.get("names"),
                  codebook=parts.get("codebook"))
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"{path} has a corrupt header ({type(e).__name__}: {e}): {redo}") from None
  if (codes.values.shape[:1] != (int(header["num_images"]),) or inconsistency(codes)
      or (codes.quant == INDEX) != (version == INDEX_VERSION)):
    raise UserError(f"{path} has a corrupt header (its arrays do not match its fields): {redo}")
  return codes


def _entropy_codes_from(path: str, header: dict, parts: dict, redo: str) -> Codes:
  """Entropy codes: the tables checked, the streams decoded, the symbols' CRC checked."""
  tables = entropy_coding.Tables(lo=parts["table_lo"].astype(np.int32),
                                 size=parts["table_size"].astype(np.int32),
                                 freq=parts["table_freq"].astype(np.uint32))
  problem = tables.check()
  if problem or int(header.get("table_precision", -1)) != entropy_coding.PRECISION:
    raise UserError(f"{path} has unusable probability tables ({problem or 'precision'}): {redo}")
  code_shape = tuple(int(d) for d in header["code_shape"])
  count = int(header["num_images"])
  try:
    streams = entropy_coding.unframe(parts["streams"].tobytes(), count)
  except ValueError as e:
    raise UserError(f"{path} has corrupt bitstreams ({e}): {redo}") from None
  channel_of = channels_of(code_shape, tables.channels)
  if channel_of is None:
    raise UserError(f"{path} has a corrupt header (tables of {tables.channels} channels for "
                    f"codes of shape {code_shape}): {redo}")
  ours, theirs = entropy_coding.coder_version(), header.get("coder")
  try:
    values = entropy_coding.decode(streams, channel_of, tables)
  except Exception as e:  # pylint: disable=broad-except  (the coder's own complaint)
    values, failure = None, f"{type(e).__name__}: {e}"
  if values is None or entropy_coding.symbols_crc32(values) != header.get("symbols_crc32"):
    why = (f" (it was written by {theirs}, this is {ours}: decode with {theirs})"
           if theirs != ours else "")
    raise UserError(f"{path}: the decoded symbols do not match the encoded ones{why}: "
                    f"{redo}")
  return Codes(values=values, quant=ENTROPY, model=header["model"],
               latent_dim=int(header["latent_dim"]), code_shape=code_shape,
               image_shape=tuple(int(d) for d in header["image_shape"]),
               run=dict(header["run"]), names=header.get("names"), tables=tables,
               streams=streams, coder=theirs)


def channels_of(code_shape: tuple[int, ...], channels: int) -> np.ndarray | None:
  """The prior's channel of each value of a flattened code (channels last), or None if
  the code's last axis does not have `channels` values."""
  if not code_shape or code_shape[-1] != channels:
    return None
  return np.tile(np.arange(channels, dtype=np.int64), int(np.prod(code_shape[:-1])))


def inconsistency(codes: Codes) -> str | None:
  """What in `codes` does not fit together (None if all does): checked before a codes file
  is written and after one is read."""
  dims = int(np.prod(codes.code_shape))
  if codes.quant == INDEX:
    return _index_inconsistency(codes)
  if codes.codebook is not None:
    return "a codebook goes with index codes only"
  if codes.quant == ENTROPY:
    if codes.values.dtype != np.int32 or codes.values.ndim != 2 or codes.values.shape[1] != dims:
      return (f"entropy symbols of {codes.values.dtype} {codes.values.shape} for codes "
              f"{codes.code_shape}")
    if codes.tables is None or codes.streams is None or len(codes.streams) != codes.num_images:
      return "entropy codes need their tables and one stream per image"
    if channels_of(tuple(codes.code_shape), codes.tables.channels) is None:
      return f"tables of {codes.tables.channels} channels for codes {codes.code_shape}"
  elif codes.quant not in QUANTS or codes.values.dtype.name != codes.quant:
    return f"values of dtype {codes.values.dtype.name} for quant {codes.quant!r}"
  if codes.values.ndim != 2 or codes.values.shape[1] != dims:
    return f"values of shape {codes.values.shape} for codes of shape {codes.code_shape}"
  if (codes.quant == "uint8") != (codes.offset is not None and codes.scale is not None):
    return "offset and scale go with uint8 codes, and only with them"
  if codes.names is not None and len(codes.names) != codes.num_images:
    return f"{len(codes.names)} names for {codes.num_images} images"
  if codes.names is not None and not all(isinstance(n, str) for n in codes.names):
    return "names that are not all strings"
  return None


def _index_inconsistency(codes: Codes) -> str | None:
  book = codes.codebook
  if book is None or book.dtype != np.float32 or book.ndim != 2 or len(book) < 2:
    return "index codes need their codebook, float32 [K >= 2, D]"
  if len(codes.code_shape) < 2 or codes.code_shape[-1] != book.shape[1]:
    return f"a codebook of {book.shape[1]}-dim vectors for codes of shape {codes.code_shape}"
  width = -(-_positions(codes.code_shape) * index_bits(len(book)) // 8)
  if codes.values.dtype != np.uint8 or codes.values.ndim != 2 or codes.values.shape[1] != width:
    return f"index values of shape {codes.values.shape}, not [N, {width}] uint8"
  if codes.offset is not None or codes.scale is not None:
    return "offset and scale go with uint8 codes, and only with them"
  if codes.names is not None and len(codes.names) != codes.num_images:
    return f"{len(codes.names)} names for {codes.num_images} images"
  if len(codes.values) and unpack_indices(codes.values, _positions(codes.code_shape),
                                          len(book)).max() >= len(book):
    return f"indices beyond the codebook's {len(book)} rows"
  return None
