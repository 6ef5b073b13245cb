"""Integer tables and per-image bitstreams of a hyperprior codec's latents (no JAX here).

A hyperprior codec (ae_jax/models/hyperprior.py) codes two grids of integers per image:
ẑ with a learned factorized density (one table per channel, built from the model and
shipped in the codes file, as the factorized codec's: ae_jax/compression/entropy_coding.py)
and the symbols round(y - μ) with a Gaussian N(0, σ) whose σ comes from h_s(ẑ). Encoder
and decoder must use the same integer probabilities to the last bit, and σ is a float
that each side computes for itself, so — as CompressAI's `GaussianConditional` and
tensorflow-compression's `LocationScaleIndexedEntropyModel` do —

  * σ is snapped to a fixed table of SCALE_LEVELS log-spaced values from SCALE_MIN to
    SCALE_MAX (CompressAI's `get_scale_table`), to the smallest entry >= σ (its
    `build_indexes`); only the entry's index reaches the coder;
  * each entry has one integer table (frequencies summing to 2**PRECISION), computed here
    in float64 from the entry's scale alone: the same on every machine. The file keeps
    the tables' CRC-32 (`tables_crc32`), and a decoder that rebuilds other tables refuses
    the file instead of decoding other symbols;
  * every table ends with an escape symbol (tail mass TAIL_MASS, at least one
    frequency count): a value outside the table's range codes the escape and then its
    distance past the range with a fixed Elias-gamma-like code (`_encode_escape`), so any
    integer is coded exactly — nothing is clipped, whatever the image.

A stream holds one image: its ẑ symbols (grouped by table, each group in raster order),
their escapes, then its y symbols (grouped by scale index) and their escapes. The decoder
reads ẑ, runs h_s, and reads y from the same decoder (`StreamReader`). The stream is range
coded with constriction's RangeEncoder and cut after the last byte the decoder needs, as
the factorized codec's (checked by decoding it).
"""
from __future__ import annotations

import math
import statistics
import zlib

import numpy as np

from ae_jax.compression import entropy_coding
from ae_jax.compression.entropy_coding import PRECISION, Tables

SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
TAIL_MASS = 1e-9  # the mass a Gaussian table leaves to its escape symbol (CompressAI's)
MIN_PROBABILITY = entropy_coding.MIN_PROBABILITY  # a learned table's symbols below: escaped
_ESCAPE_LENGTHS = 33  # an escaped distance has 0..32 significant bits
_CHUNK = 16  # escape bits go 16 at a time (uniform models)


# ----------------------------------------------------------------------------- tables

def scale_table(lo: float = SCALE_MIN, hi: float = SCALE_MAX,
                levels: int = SCALE_LEVELS) -> np.ndarray:
  """float64 [levels]: exp(linspace(log lo, log hi, levels)) (CompressAI's get_scale_table)."""
  return np.exp(np.linspace(math.log(lo), math.log(hi), levels))


def scale_indexes(scales: np.ndarray, table: np.ndarray) -> np.ndarray:
  """int32: per scale, the index of the smallest table entry >= it (the last entry for
  larger ones), compared in float32 as the scales are."""
  return np.searchsorted(table.astype(np.float32)[:-1], np.asarray(scales, np.float32),
                         side="left").astype(np.int32)


def _frequencies(q: np.ndarray) -> np.ndarray:
  """Integer frequencies summing to 2**PRECISION, each >= 1, following probabilities q
  (deterministic: the rounding's remainder goes to the most likely symbol)."""
  total = 1 << PRECISION
  n = len(q)
  if n > total // 2:
    raise ValueError(f"{n} symbols do not fit {PRECISION}-bit tables")
  f = np.floor(q / q.sum() * (total - n)).astype(np.int64) + 1
  f[int(np.argmax(q))] += total - int(f.sum())
  return f


def _stack(los: list[int], rows: list[np.ndarray]) -> Tables:
  freq = np.zeros((len(rows), max(len(r) for r in rows)), np.uint32)
  for i, f in enumerate(rows):
    freq[i, :len(f)] = f
  return Tables(lo=np.asarray(los, np.int32), size=np.asarray([len(r) for r in rows], np.int32),
                freq=freq)


def gaussian_tables(table: np.ndarray, tail_mass: float = TAIL_MASS) -> Tables:
  """One table per scale entry s: symbols -r..r, r = ceil(s * Φ^-1(1 - tail/2)), with
  P(k) = Φ((1/2 - |k|)/s) - Φ((-1/2 - |k|)/s) (the lower tail, where the difference keeps
  its precision), then the escape symbol with the rest. float64 from the scales alone."""
  multiplier = -statistics.NormalDist().inv_cdf(tail_mass / 2)
  cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0))
  los, rows = [], []
  for s in np.asarray(table, np.float64):
    r = int(math.ceil(float(s) * multiplier))
    k = np.abs(np.arange(-r, r + 1))
    p = np.array([cdf((0.5 - a) / s) - cdf((-0.5 - a) / s) for a in k])
    q = np.append(p, max(1.0 - p.sum(), 0.0))
    los.append(-r)
    rows.append(_frequencies(q))
  return _stack(los, rows)


def learned_tables(pmf_CxL: np.ndarray, lo: int) -> Tables:
  """One table per channel from probabilities pmf[c, k] of symbol lo + k: the symbols
  from the first to the last at least MIN_PROBABILITY likely, then the escape symbol with
  the mass of all others."""
  pmf = np.clip(np.asarray(pmf_CxL, np.float64), 0.0, None)
  los, rows = [], []
  for p in pmf:
    p = p / max(p.sum(), 1e-300)
    keep = np.flatnonzero(p >= MIN_PROBABILITY)
    first, last = (int(keep[0]), int(keep[-1])) if len(keep) else (int(np.argmax(p)),) * 2
    q = np.append(p[first:last + 1], p[:first].sum() + p[last + 1:].sum())
    los.append(lo + first)
    rows.append(_frequencies(q))
  return _stack(los, rows)


def tables_crc32(tables: Tables) -> int:
  """CRC-32 of a set of tables (lo, size, freq, little-endian)."""
  data = b"".join(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
                  for a in (tables.lo, tables.size, tables.freq))
  return zlib.crc32(data)


class Models:
  """The constriction model of each table (built once, used for every image)."""

  def __init__(self, tables: Tables):
    import constriction  # pylint: disable=import-outside-toplevel
    self.tables = tables
    probs = tables.probabilities()
    self.models = [constriction.stream.model.Categorical(probs[g, :tables.size[g]],
                                                         perfect=False)
                   for g in range(tables.channels)]
    self.lengths = constriction.stream.model.Uniform(_ESCAPE_LENGTHS)
    self.uniform = {k: constriction.stream.model.Uniform(1 << k) for k in range(1, _CHUNK + 1)}


# ---------------------------------------------------------------------------- streams

def _encode_escape(coder, models: Models, value: int, lo: int, top: int) -> None:
  """A value outside [lo, top]: its side, then its distance d >= 0 past the range as the
  bit length of d and d's bits below the leading one."""
  below = value < lo
  d = (lo - 1 - value) if below else (value - top - 1)
  n = int(d).bit_length()
  if n > _ESCAPE_LENGTHS - 1:
    raise ValueError(f"a code value ({value}) too large to code")
  coder.encode(np.array([int(below)], np.int32), models.uniform[1])
  coder.encode(np.array([n], np.int32), models.lengths)
  rest = d - (1 << (n - 1)) if n > 1 else 0
  for shift in range(0, max(n - 1, 0), _CHUNK):
    k = min(_CHUNK, n - 1 - shift)
    coder.encode(np.array([(rest >> shift) & ((1 << k) - 1)], np.int32), models.uniform[k])


def _decode_escape(decoder, models: Models, lo: int, top: int) -> int:
  below = int(decoder.decode(models.uniform[1]))
  n = int(decoder.decode(models.lengths))
  rest = 0
  for shift in range(0, max(n - 1, 0), _CHUNK):
    k = min(_CHUNK, n - 1 - shift)
    rest |= int(decoder.decode(models.uniform[k])) << shift
  d = ((1 << (n - 1)) + rest) if n > 1 else n
  return lo - 1 - d if below else top + 1 + d


def encode_part(coder, symbols: np.ndarray, groups: np.ndarray, models: Models) -> None:
  """Codes int `symbols` [D] each with the table of its group ([D]): group by group in
  ascending order (raster order within a group), then the escaped values in raster order."""
  t = models.tables
  symbols = np.asarray(symbols, np.int64).ravel()
  groups = np.asarray(groups, np.int64).ravel()
  lo = t.lo[groups].astype(np.int64)
  top = lo + t.size[groups] - 2  # the highest regular symbol; size - 1 is the escape
  escaped = (symbols < lo) | (symbols > top)
  shifted = np.where(escaped, t.size[groups] - 1, symbols - lo).astype(np.int32)
  for g in np.unique(groups):
    coder.encode(shifted[groups == g], models.models[g])
  for i in np.flatnonzero(escaped):
    _encode_escape(coder, models, int(symbols[i]), int(lo[i]), int(top[i]))


def decode_part(decoder, groups: np.ndarray, models: Models) -> np.ndarray:
  """The int32 symbols [D] `encode_part` coded with the same groups and tables."""
  t = models.tables
  groups = np.asarray(groups, np.int64).ravel()
  shifted = np.empty(len(groups), np.int64)
  for g in np.unique(groups):
    where = groups == g
    shifted[where] = decoder.decode(models.models[g], int(where.sum()))
  lo = t.lo[groups].astype(np.int64)
  top = lo + t.size[groups] - 2
  out = shifted + lo
  for i in np.flatnonzero(shifted == t.size[groups] - 1):
    out[i] = _decode_escape(decoder, models, int(lo[i]), int(top[i]))
  if np.abs(out).max(initial=0) >= 2**31:
    raise ValueError("a decoded value beyond int32")
  return out.astype(np.int32)


class StreamReader:
  """Decodes one image's stream part by part: `part(groups, models)`, in the order the
  parts were coded (the caller computes the next part's groups from the previous ones)."""

  def __init__(self, data: bytes):
    import constriction  # pylint: disable=import-outside-toplevel
    self._decoder = constriction.stream.queue.RangeDecoder(entropy_coding.bytes_to_words(data))

  def part(self, groups: np.ndarray, models: Models) -> np.ndarray:
    return decode_part(self._decoder, groups, models)


def _decodes_to(data: bytes, parts) -> bool:
  try:
    reader = StreamReader(data)
    return all(np.array_equal(reader.part(g, m), np.asarray(s).ravel()) for s, g, m in parts)
  except (AssertionError, ValueError, RuntimeError):  # constriction: "invalid for the model"
    return False


def encode_image(parts) -> bytes:
  """One image's stream: `parts` = [(symbols, groups, models), ...] coded in order, cut
  after the last byte the decoder needs (each cut checked by decoding it)."""
  import constriction  # pylint: disable=import-outside-toplevel
  coder = constriction.stream.queue.RangeEncoder()
  for symbols, groups, models in parts:
    encode_part(coder, symbols, groups, models)
  data = entropy_coding.words_to_bytes(coder.get_compressed())
  while data and _decodes_to(data[:-1], parts):
    data = data[:-1]
  return data


def symbols_crc32(parts_of_images) -> int:
  """CRC-32 of every image's symbols, part after part (int32, little-endian): the file
  keeps it and decoding checks it (a desynchronized decode fails loudly)."""
  crc = 0
  for parts in parts_of_images:
    for symbols in parts:
      crc = zlib.crc32(np.ascontiguousarray(np.asarray(symbols).ravel(), "<i4").tobytes(), crc)
  return crc
