"""The payload parsers of containers.py on files Pillow writes: what they return is exactly
the coded image a decoder reads (a file rebuilt around it, or moved within it, decodes to
the same pixels), and malformed containers are refused."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

from ae_jax.compression import containers


def _image(seed: int = 0) -> np.ndarray:
  """A 28x28 grayscale picture with structure (a blob and noise), like a dataset image."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:28, :28]
  blob = 200 * np.exp(-((x - 14) ** 2 + (y - 12) ** 2) / 60)
  return np.clip(blob + rng.normal(0, 20, (28, 28)), 0, 255).astype(np.uint8)


def _save(image: np.ndarray, fmt: str, **options) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, fmt, **options)
  return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("L"))


# ------------------------------------------------------------------------------- WebP

@pytest.mark.parametrize("quality", [0, 50, 90])
def test_webp_payload_is_the_vp8_chunk_a_decoder_needs(quality):
  data = _save(_image(), "WEBP", quality=quality, method=6)
  payload = containers.webp_payload(data)
  assert len(payload) == len(data) - 20  # RIFF header (12) + chunk header (8), no padding
  # A VP8 key frame: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
  assert payload[3:6] == b"\x9d\x01\x2a"
  assert struct.unpack("<HH", payload[6:10]) == (28, 28)
  # A file rebuilt from the payload alone decodes to the same pixels.
  pad = b"\0" * (len(payload) & 1)
  rebuilt = (b"RIFF" + struct.pack("<I", 4 + 8 + len(payload) + len(pad)) + b"WEBP"
             + b"VP8 " + struct.pack("<I", len(payload)) + payload + pad)
  np.testing.assert_array_equal(_pixels(rebuilt), _pixels(data))


def test_webp_lossless_payload_is_the_vp8l_chunk():
  data = _save(_image(), "WEBP", lossless=True)
  payload = containers.webp_payload(data)
  assert payload[0] == 0x2F and len(payload) == len(data) - 20  # VP8L signature
  np.testing.assert_array_equal(_pixels(data), _image())


def test_riff_chunks_skip_the_pad_byte_of_odd_chunks():
  odd, even = b"abc", b"wxyz"
  body = b"WEBP" + b"EXIF" + struct.pack("<I", 3) + odd + b"\0" + b"VP8 " + struct.pack(
      "<I", 4) + even
  data = b"RIFF" + struct.pack("<I", len(body)) + body
  chunks = containers.riff_chunks(data)
  assert [(c.kind, c.payload(data)) for c in chunks] == [("EXIF", odd), ("VP8 ", even)]
  assert containers.webp_payload(data) == even


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-5], "truncated WebP file"),
    (lambda d: b"RIFX" + d[4:], "not a WebP file"),
    (lambda d: d[:16] + struct.pack("<I", 10_000) + d[20:], "runs past the end"),
])
def test_malformed_webp_is_refused(damage, message):
  data = _save(_image(), "WEBP", quality=50)
  with pytest.raises(ValueError, match=message):
    containers.webp_payload(damage(data))


# ------------------------------------------------------------------------------- AVIF

def _full_box(data: bytes, box: containers.Part) -> tuple[int, int]:
  """(version, where the content after a FullBox's version and flags starts)."""
  return data[box.start], box.start + 4


def _iloc_extents(data: bytes) -> list[tuple[int, int, int]]:
  """(offset field position, offset, length) of every extent in the file's `iloc` box
  (ISO/IEC 14496-12 8.11.3), with offset the absolute file offset (base + extent)."""
  meta = [b for b in containers.isobmff_boxes(data) if b.kind == "meta"][0]
  _, start = _full_box(data, meta)
  iloc = [b for b in containers.isobmff_boxes(data, start, meta.start + meta.size)
          if b.kind == "iloc"][0]
  version, at = _full_box(data, iloc)
  offset_size, length_size = data[at] >> 4, data[at] & 15
  base_size, index_size = data[at + 1] >> 4, (data[at + 1] & 15) if version else 0
  at += 2

  def read(n):
    nonlocal at
    value = int.from_bytes(data[at:at + n], "big") if n else 0
    at += n
    return value
  extents = []
  for _ in range(read(4 if version == 2 else 2)):
    read(4 if version == 2 else 2)  # item_ID
    if version:
      assert read(2) & 15 == 0, "construction_method 0: offsets into the file"
    read(2)  # data_reference_index
    base = read(base_size)
    for _ in range(read(2)):
      read(index_size)
      where = at
      offset = base + read(offset_size)
      extents.append((where, offset, read(length_size)))
    assert base_size == 0 or base == 0, "the test moves extent offsets, not base offsets"
  return extents, offset_size


@pytest.mark.parametrize("quality", [0, 50])
def test_avif_payload_is_the_mdat_box_the_items_point_into(quality):
  data = _save(_image(), "AVIF", quality=quality)
  payload = containers.avif_payload(data)
  boxes = containers.isobmff_boxes(data)
  assert [b.kind for b in boxes] == ["ftyp", "meta", "mdat"]
  assert 0 < len(payload) < len(data) - 200  # ftyp + meta: ~260 B at 28x28
  mdat = boxes[-1]
  # The image items' extents cover exactly the mdat payload: nothing coded lies elsewhere.
  extents, _ = _iloc_extents(data)
  covered = sorted((offset, offset + length) for _, offset, length in extents)
  assert covered[0][0] == mdat.start and covered[-1][1] == mdat.start + mdat.size
  assert sum(length for _, _, length in extents) == len(payload)
  # AV1 OBUs (type << 3 | has_size 2): a temporal delimiter (0x12, size 0), then the
  # sequence header (0x0A).
  assert payload[:3] == b"\x12\x00\x0a"


def test_a_64_bit_mdat_box_gives_the_same_payload_and_pixels():
  """The file rewritten with mdat's 64-bit size form (and the items' offsets moved by the
  8 bytes it adds): libavif decodes the same pixels, and the parser finds the same payload."""
  data = _save(_image(), "AVIF", quality=30)
  mdat = containers.isobmff_boxes(data)[-1]
  extents, offset_size = _iloc_extents(data)
  patched = bytearray(data)
  for where, offset, _ in extents:
    patched[where:where + offset_size] = (offset + 8).to_bytes(offset_size, "big")
  head = mdat.start - 8
  large = struct.pack(">I4sQ", 1, b"mdat", mdat.size + 16)
  moved = bytes(patched[:head]) + large + data[mdat.start:]
  assert containers.isobmff_boxes(moved)[-1] == containers.Part("mdat", mdat.start + 8,
                                                                mdat.size)
  assert containers.avif_payload(moved) == containers.avif_payload(data)
  np.testing.assert_array_equal(_pixels(moved), _pixels(data))


def test_isobmff_boxes_of_size_zero_and_uuid():
  uuid = struct.pack(">I4s", 8 + 16 + 3, b"uuid") + b"U" * 16 + b"abc"
  data = struct.pack(">I4s", 12, b"ftyp") + b"avif" + uuid + struct.pack(">I4s", 0,
                                                                          b"mdat") + b"xyz"
  boxes = containers.isobmff_boxes(data)
  assert [(b.kind, b.payload(data)) for b in boxes] == [
      ("ftyp", b"avif"), ("uuid", b"abc"), ("mdat", b"xyz")]
  assert containers.avif_payload(data) == b"xyz"


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-5], "does not fit"),
    (lambda d: d[:4] + b"ftyq" + d[8:], "does not start with an 'ftyp'"),
    (lambda d: d[:3], "truncated box header"),
])
def test_malformed_avif_is_refused(damage, message):
  data = _save(_image(), "AVIF", quality=50)
  with pytest.raises(ValueError, match=message):
    containers.avif_payload(damage(data))
