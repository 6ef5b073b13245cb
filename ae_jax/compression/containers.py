"""The payload inside an image file's container: a WebP file's `VP8 ` chunk (RIFF) and an
AVIF file's `mdat` box (ISOBMFF).

Why: at 28x28 the container is a large share of a file (WebP: 20 B of ~100; AVIF: ~260 B of
~350, its `ftyp` and `meta` boxes), and a codec that stores many small images together would
keep that once. Counting the coded data alone compares like with like: JPEG's scan data,
the autoencoder's code. The parsers follow the specifications (RIFF: little-endian 32-bit
chunk sizes, odd chunks padded to even; ISO/IEC 14496-12: big-endian 32-bit box sizes, 1 =
a 64-bit size follows, 0 = to the end of the file, `uuid` boxes with a 16-byte type), and
refuse what does not add up rather than guess.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Part:
  """A chunk or box: its four-character type, where its payload starts, and how long it is
  (bytes; headers and padding excluded)."""
  kind: str
  start: int
  size: int

  def payload(self, data: bytes) -> bytes:
    return data[self.start:self.start + self.size]


# ----------------------------------------------------------------------- WebP (RIFF)

def riff_chunks(data: bytes) -> list[Part]:
  """The chunks of a WebP file (`RIFF` size `WEBP`, then fourcc + 32-bit size + payload,
  padded to an even length)."""
  if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
    raise ValueError("not a WebP file: no RIFF/WEBP header")
  end = 8 + int.from_bytes(data[4:8], "little")
  if end > len(data):
    raise ValueError(f"truncated WebP file: RIFF says {end} bytes, the file has {len(data)}")
  chunks, at = [], 12
  while at < end:
    if at + 8 > end:
      raise ValueError(f"truncated WebP chunk header at byte {at}")
    size = int.from_bytes(data[at + 4:at + 8], "little")
    if at + 8 + size > end:
      raise ValueError(f"WebP chunk at byte {at} runs past the end of the file")
    chunks.append(Part(data[at:at + 4].decode("latin-1"), at + 8, size))
    at += 8 + size + (size & 1)
  return chunks


def webp_payload(data: bytes) -> bytes:
  """The coded image of a WebP file: its `VP8 ` (lossy) or `VP8L` (lossless) chunk's
  payload. An animation or a separate alpha chunk is refused: its bytes would be missed."""
  chunks = riff_chunks(data)
  kinds = [c.kind for c in chunks]
  if "ANIM" in kinds or "ALPH" in kinds:
    raise ValueError(f"WebP file with chunks {kinds}: only a still image without a separate "
                     "alpha chunk has one payload")
  coded = [c for c in chunks if c.kind in ("VP8 ", "VP8L")]
  if len(coded) != 1:
    raise ValueError(f"WebP file with chunks {kinds}: expected one 'VP8 ' or 'VP8L' chunk")
  return coded[0].payload(data)


# -------------------------------------------------------------------- AVIF (ISOBMFF)

def isobmff_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[Part]:
  """The boxes in data[start:end] (the file's top level by default)."""
  end = len(data) if end is None else end
  boxes, at = [], start
  while at < end:
    if at + 8 > end:
      raise ValueError(f"truncated box header at byte {at}")
    size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
    header = 8
    if size == 1:  # the 64-bit form: largesize follows the type
      if at + 16 > end:
        raise ValueError(f"truncated 64-bit box header at byte {at}")
      size, header = int.from_bytes(data[at + 8:at + 16], "big"), 16
    elif size == 0:  # the last box: it runs to the end of the file
      size = end - at
    if kind == b"uuid":
      header += 16
    if size < header or at + size > end:
      raise ValueError(f"box {kind!r} at byte {at} has size {size}, which does not fit")
    boxes.append(Part(kind.decode("latin-1"), at + header, size - header))
    at += size
  return boxes


def avif_payload(data: bytes) -> bytes:
  """The coded image of an AVIF file: its `mdat` box's payload (the AV1 data; `ftyp` and
  `meta`, the item's description, are the container)."""
  boxes = isobmff_boxes(data)
  if not boxes or boxes[0].kind != "ftyp":
    raise ValueError("not an ISOBMFF file: it does not start with an 'ftyp' box")
  mdat = [b for b in boxes if b.kind == "mdat"]
  if len(mdat) != 1:
    raise ValueError(f"AVIF file with boxes {[b.kind for b in boxes]}: expected one 'mdat'")
  return mdat[0].payload(data)
