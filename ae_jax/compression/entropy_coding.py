"""Integer probability tables and the entropy coder of the learned codec (no JAX here).

A learned codec's code is a grid of integers ŷ whose probabilities come from its learned
prior (ae_jax/models/entropy.py). Encoder and decoder must use the *same* probabilities
to the last bit, or the decode silently goes astray. As tensorflow-compression and
CompressAI do, the floats are turned into integer tables once:

  * `build_tables(pmf, lo)`: per channel, the symbols whose probability matters (a
    contiguous range [lo_c, hi_c]; the mass outside is folded into the two end symbols, so
    every integer can be coded after clipping to the range), as integer frequencies that
    sum to 2**PRECISION, each at least 1.
  * The tables travel in the codes file (like JPEG's shared tables), so decoding never
    recomputes a float: a decoder with perturbed weights still reads the same symbols.

The bitstreams are range coded with `constriction` (its queue-based RangeEncoder, 32-bit
words, written big-endian), one stream per image, cut after the last byte the decoder
needs (`_shortest`: checked by decoding): the coder's overhead is about 2 bytes an image
(tests/test_codec.py); the file frames each stream with a varint length (one byte under 128
bytes).
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import zlib

import numpy as np

PRECISION = 16  # the tables' frequencies sum to 2**PRECISION
MIN_PROBABILITY = 2.0**-20  # symbols less likely than this are left out of a table


def coder_version() -> str:
  """The entropy coder's package and version (written into codes files)."""
  return "constriction " + importlib.metadata.version("constriction")


@dataclasses.dataclass(frozen=True)
class Tables:
  """Integer frequency tables, one per channel: channel c codes the symbols lo[c] ..
  lo[c] + size[c] - 1 with frequencies freq[c, :size[c]] (the rest of the row is 0)."""
  lo: np.ndarray    # int32 [C]
  size: np.ndarray  # int32 [C]
  freq: np.ndarray  # uint32 [C, max size]

  @property
  def channels(self) -> int:
    return len(self.lo)

  def probabilities(self) -> np.ndarray:
    """float64 [C, max size]: freq / 2**PRECISION, exact (dyadic), what the coder gets."""
    return self.freq.astype(np.float64) / float(1 << PRECISION)

  def check(self) -> str | None:
    """What is wrong with these tables (None if nothing): read from a file, they are
    checked before use."""
    c = len(self.lo)
    if self.lo.shape != (c,) or self.size.shape != (c,) or self.freq.ndim != 2 \
        or self.freq.shape[0] != c:
      return "tables of mismatched shapes"
    if (self.size < 1).any() or (self.size > self.freq.shape[1]).any():
      return "table sizes out of range"
    total = 1 << PRECISION
    for ch in range(c):
      row = self.freq[ch]
      if row[:self.size[ch]].min() < 1 or row[self.size[ch]:].any() \
          or int(row.sum()) != total:
        return f"channel {ch}'s table does not sum to 2**{PRECISION} with every symbol >= 1"
    return None


def build_tables(pmf_CxL: np.ndarray, lo: int) -> Tables:
  """Integer tables from probabilities pmf[c, k] of symbol lo + k (rows need not sum to
  exactly 1: what is missing is tail mass, folded into the end symbols). Deterministic:
  the same floats give the same tables."""
  pmf = np.clip(np.asarray(pmf_CxL, np.float64), 0.0, None)
  channels, width = pmf.shape
  total = 1 << PRECISION
  los, sizes, rows = [], [], []
  for c in range(channels):
    p = pmf[c] / max(pmf[c].sum(), 1e-300)
    keep = np.flatnonzero(p >= MIN_PROBABILITY)
    first, last = (int(keep[0]), int(keep[-1])) if len(keep) else (int(np.argmax(p)),) * 2
    q = p[first:last + 1].copy()
    q[0] += p[:first].sum()
    q[-1] += p[last + 1:].sum()
    n = len(q)
    if n > total // 2:
      raise ValueError(f"channel {c}: {n} symbols do not fit {PRECISION}-bit tables")
    f = np.floor(q * (total - n)).astype(np.int64) + 1  # every symbol codable
    f[int(np.argmax(q))] += total - int(f.sum())
    los.append(lo + first)
    sizes.append(n)
    rows.append(f)
  freq = np.zeros((channels, max(sizes)), np.uint32)
  for c, f in enumerate(rows):
    freq[c, :len(f)] = f
  return Tables(lo=np.asarray(los, np.int32), size=np.asarray(sizes, np.int32), freq=freq)


def clip(symbols_NxD: np.ndarray, channel_of_D: np.ndarray, tables: Tables
         ) -> tuple[np.ndarray, int]:
  """(symbols clipped into each channel's table range, how many were outside it)."""
  lo = tables.lo[channel_of_D]
  hi = lo + tables.size[channel_of_D] - 1
  out = np.clip(symbols_NxD, lo, hi).astype(np.int32)
  return out, int((out != symbols_NxD).sum())


def _model():
  import constriction  # pylint: disable=import-outside-toplevel
  return constriction.stream.model.Categorical(perfect=False)


def _to_bytes(words: np.ndarray) -> bytes:
  return words.astype(">u4").tobytes()  # big-endian: a word's low-order bytes come last


def _to_words(data: bytes) -> np.ndarray:
  return np.frombuffer(data + b"\0" * (-len(data) % 4), ">u4").astype(np.uint32)


# The stream <-> words conversions, for the hyperprior's streams too (latent_coding.py).
words_to_bytes, bytes_to_words = _to_bytes, _to_words


def _decode_one(data: bytes, model, probs: np.ndarray) -> np.ndarray:
  import constriction  # pylint: disable=import-outside-toplevel
  return constriction.stream.queue.RangeDecoder(_to_words(data)).decode(model, probs)


def _shortest(data: bytes, row: np.ndarray, model, probs: np.ndarray) -> bytes:
  """`data` without as many trailing bytes as still decode to `row`. The decoder reads
  missing bytes as zeros, and the coder's last word only has to point inside its final
  interval: its low-order bytes are often free. Each cut is checked by decoding it, so the
  stream decodes exactly by construction."""
  while data and _decodes_to(data[:-1], row, model, probs):
    data = data[:-1]
  return data


def _decodes_to(data: bytes, row: np.ndarray, model, probs: np.ndarray) -> bool:
  """Whether `data` decodes to `row` (a cut the coder refuses as invalid does not)."""
  try:
    return np.array_equal(_decode_one(data, model, probs), row)
  except (AssertionError, ValueError, RuntimeError):  # constriction: "invalid for the model"
    return False


def encode(symbols_NxD: np.ndarray, channel_of_D: np.ndarray, tables: Tables) -> list[bytes]:
  """One range-coded stream per row of `symbols` (each within its channel's range: see
  `clip`); symbol d of a row is coded with the table of channel channel_of[d]."""
  import constriction  # pylint: disable=import-outside-toplevel
  probs = tables.probabilities()[channel_of_D]
  shifted = (np.asarray(symbols_NxD) - tables.lo[channel_of_D]).astype(np.int32)
  if (shifted < 0).any() or (shifted >= tables.size[channel_of_D]).any():
    raise ValueError("symbols outside their tables' ranges: clip them first")
  model, streams = _model(), []
  for row in shifted:
    coder = constriction.stream.queue.RangeEncoder()
    coder.encode(row, model, probs)
    streams.append(_shortest(_to_bytes(coder.get_compressed()), row, model, probs))
  return streams


def decode(streams: list[bytes], channel_of_D: np.ndarray, tables: Tables) -> np.ndarray:
  """int32 symbols [N, D] from the streams `encode` made with the same tables."""
  probs = tables.probabilities()[channel_of_D]
  model = _model()
  out = np.empty((len(streams), len(channel_of_D)), np.int32)
  for i, data in enumerate(streams):
    out[i] = _decode_one(data, model, probs)
  return out + tables.lo[channel_of_D]


# --------------------------------------------------------------------------- framing

def varint(n: int) -> bytes:
  """LEB128: 7 bits a byte, low first, the high bit set on all but the last."""
  out = bytearray()
  while True:
    byte, n = n & 0x7F, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def frame(streams: list[bytes]) -> bytes:
  """The streams one after the other, each after its varint length."""
  return b"".join(varint(len(s)) + s for s in streams)


def unframe(data: bytes, count: int) -> list[bytes]:
  """The `count` streams of `frame`'s output; ValueError if it does not hold exactly them."""
  streams, at = [], 0
  for _ in range(count):
    n, shift = 0, 0
    while True:
      if at >= len(data) or shift > 28:
        raise ValueError("a stream's length is cut short")
      byte = data[at]
      at += 1
      n |= (byte & 0x7F) << shift
      shift += 7
      if not byte & 0x80:
        break
    if at + n > len(data):
      raise ValueError("a stream is cut short")
    streams.append(data[at:at + n])
    at += n
  if at != len(data):
    raise ValueError("bytes after the last stream")
  return streams


def framed_sizes(streams: list[bytes]) -> np.ndarray:
  """Bytes each image takes in the file: its stream and its length prefix."""
  return np.asarray([len(s) + len(varint(len(s))) for s in streams], np.int64)


def symbols_crc32(symbols_NxD: np.ndarray) -> int:
  """CRC-32 of the symbols (int32, little-endian): the file keeps it, and decoding checks
  that it read the very symbols that were encoded (a desynchronized decode fails loudly)."""
  return zlib.crc32(np.ascontiguousarray(symbols_NxD, "<i4").tobytes())
