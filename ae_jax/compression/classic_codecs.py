"""The classic codecs the autoencoder is measured against: PNG, JPEG, WebP and AVIF, all
written and decoded by Pillow, each giving rows of bytes/image and quality.

What the bytes count, per codec (the `count` field of a row: `file`, `payload` or `tables
shared`): PNG, the whole file; JPEG, the whole file, the file without its quantization and
Huffman tables (Pillow's abbreviated `streamtype=2` stream) and the entropy-coded scan data
alone (payload); WebP, the whole file and its `VP8 ` chunk (payload); AVIF, the whole file
and its `mdat` box (payload). Compare payload with payload and file with file.

Grayscale: the images are given to Pillow as mode "L". AVIF then codes one plane (Pillow
picks 4:0:0 subsampling for L), and decodes to L. Lossy WebP (VP8) has no grayscale form:
Pillow converts L to RGB and libwebp codes YUV 4:2:0 whose chroma planes are flat (the bytes
they cost are in the counts, as a WebP user pays them); the decoded RGB (channels within 1 of
each other) is turned back to L by Pillow's ITU-R 601 luma, and measured as that.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from ae_jax.compression import containers
from ae_jax.core import quality

JPEG_QUALITIES = (1, 5, 10, 20, 30, 50, 75, 90, 95)
# Quality 0 is each encoder's smallest file; at 28x28 WebP's is already ~21 dB.
WEBP_QUALITIES = (0, 5, 10, 20, 30, 50, 75, 90)
AVIF_QUALITIES = (0, 10, 20, 30, 40, 50, 65, 80)
WEBP_METHOD = 6  # libwebp's slowest, smallest files (0..6; Pillow's default is 4)
AVIF_SPEED = 6  # Pillow's default (0 = slowest and smallest .. 10)
NAMES = ("jpeg", "webp", "avif", "png")


def measured_row(method: str, setting: str, nbytes: float, raw: int, restored_u8: np.ndarray,
                 originals_u8: np.ndarray, **extra) -> dict:
  """A table row: bytes/image, compression ratio and the mean quality of `restored_u8`."""
  q = quality.report(restored_u8, originals_u8)
  if q["mse"] == 0:
    q["psnr"] = math.inf  # lossless (metrics.psnr would print its 100 dB floor)
  return {"method": method, "setting": setting, "bytes_per_image": float(nbytes),
          "ratio": raw / nbytes, **q, **extra}


def recount(row: dict, method: str, nbytes: float, count: str, raw: int) -> dict:
  """The same pictures as `row`, their bytes counted another way (`raw`: an uncompressed
  image's bytes)."""
  return {**row, "method": method, "bytes_per_image": float(nbytes), "ratio": raw / nbytes,
          "count": count}


def _pil(image_u8: np.ndarray) -> Image.Image:
  return Image.fromarray(image_u8[..., 0] if image_u8.shape[-1] == 1 else image_u8)


def _as_batch(images: list[np.ndarray], like: np.ndarray) -> np.ndarray:
  return np.stack(images).reshape(like.shape)


def _decode(data: bytes, mode: str) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert(mode))


def _mode(images_u8: np.ndarray) -> str:
  return {1: "L", 3: "RGB"}[images_u8.shape[-1]]


def _raw(images_u8: np.ndarray) -> int:
  return int(np.prod(images_u8.shape[1:]))


# ---------------------------------------------------------------------------- PNG

def png_row(images_u8: np.ndarray) -> dict:
  """PNG (lossless, optimize=True): mean file bytes; decoding gives the originals back."""
  decoded, total = [], 0
  for image in images_u8:
    buf = io.BytesIO()
    _pil(image).save(buf, "PNG", optimize=True)
    total += buf.tell()
    decoded.append(np.asarray(Image.open(buf)))
  return measured_row("PNG", "lossless", total / len(images_u8), _raw(images_u8),
                      _as_batch(decoded, images_u8), images_u8, count="file")


# ---------------------------------------------------------------------------- JPEG

def jpeg_segments(jpeg_bytes: bytes) -> tuple[int, int]:
  """(bytes of the DQT and DHT table segments, bytes of entropy-coded scan data) of a
  baseline single-scan JPEG file such as Pillow writes.

  The file less its tables is Pillow's abbreviated stream (`streamtype=2`): tables can be
  shared by all images, as the autoencoder's decoder is.
  """
  tables, at = 0, 2  # after SOI
  while at + 4 <= len(jpeg_bytes) and jpeg_bytes[at] == 0xFF:
    marker = jpeg_bytes[at + 1]
    length = int.from_bytes(jpeg_bytes[at + 2:at + 4], "big")
    if marker in (0xDB, 0xC4):
      tables += 2 + length
    if marker == 0xDA:  # start of scan: entropy-coded data up to the final EOI marker
      return tables, len(jpeg_bytes) - (at + 2 + length) - 2
    at += 2 + length
  raise ValueError("not a baseline JPEG stream: no start-of-scan marker")


def jpeg(images_u8: np.ndarray, quality_setting: int) -> tuple[np.ndarray, dict[str, float]]:
  """(decoded images, mean bytes/image of "file", "tables shared", "scan only")."""
  decoded, sizes = [], {"file": 0, "tables shared": 0, "scan only": 0}
  for image in images_u8:
    buf = io.BytesIO()
    _pil(image).save(buf, "JPEG", quality=quality_setting)
    tables, scan = jpeg_segments(buf.getvalue())
    sizes["file"] += buf.tell()
    sizes["tables shared"] += buf.tell() - tables
    sizes["scan only"] += scan
    decoded.append(np.asarray(Image.open(buf)))
  return _as_batch(decoded, images_u8), {k: v / len(images_u8) for k, v in sizes.items()}


def jpeg_rows(images_u8: np.ndarray, qualities=JPEG_QUALITIES) -> list[dict]:
  """Three rows per quality, one per way of counting the bytes (same pictures)."""
  raw, rows = _raw(images_u8), []
  for q in qualities:
    decoded, sizes = jpeg(images_u8, q)
    row = measured_row("JPEG file", f"quality {q}", sizes["file"], raw, decoded, images_u8,
                       jpeg_quality=q, count="file")
    rows += [row,
             recount(row, "JPEG, tables shared", sizes["tables shared"], "tables shared", raw),
             recount(row, "JPEG, scan only", sizes["scan only"], "payload", raw)]
  return rows


# ---------------------------------------------------------------- WebP and AVIF

def webp(images_u8: np.ndarray, quality_setting: int,
         method: int = WEBP_METHOD) -> tuple[np.ndarray, dict[str, float]]:
  """(decoded images, mean bytes/image of "file" and "payload": the `VP8 ` chunk), lossy."""
  return _contained(images_u8, containers.webp_payload, "WEBP", quality=quality_setting,
                    method=method)


def avif(images_u8: np.ndarray, quality_setting: int,
         speed: int = AVIF_SPEED) -> tuple[np.ndarray, dict[str, float]]:
  """(decoded images, mean bytes/image of "file" and "payload": the `mdat` box)."""
  return _contained(images_u8, containers.avif_payload, "AVIF", quality=quality_setting,
                    speed=speed)


def _contained(images_u8, payload_of, fmt: str, **options):
  decoded, sizes = [], {"file": 0, "payload": 0}
  for image in images_u8:
    buf = io.BytesIO()
    _pil(image).save(buf, fmt, **options)
    data = buf.getvalue()
    sizes["file"] += len(data)
    sizes["payload"] += len(payload_of(data))
    decoded.append(_decode(data, _mode(images_u8)))
  return _as_batch(decoded, images_u8), {k: v / len(images_u8) for k, v in sizes.items()}


def webp_rows(images_u8: np.ndarray, qualities=WEBP_QUALITIES,
              method: int = WEBP_METHOD) -> list[dict]:
  """Two rows per quality: the whole file and the `VP8 ` payload (same pictures)."""
  raw, rows = _raw(images_u8), []
  for q in qualities:
    decoded, sizes = webp(images_u8, q, method)
    row = measured_row("WebP file", f"quality {q}", sizes["file"], raw, decoded,
                       images_u8, webp_quality=q, webp_method=method, count="file")
    rows += [row, recount(row, "WebP, VP8 payload", sizes["payload"], "payload", raw)]
  return rows


def avif_rows(images_u8: np.ndarray, qualities=AVIF_QUALITIES,
              speed: int = AVIF_SPEED) -> list[dict]:
  """Two rows per quality: the whole file and the `mdat` payload (same pictures)."""
  raw, rows = _raw(images_u8), []
  for q in qualities:
    decoded, sizes = avif(images_u8, q, speed)
    row = measured_row("AVIF file", f"quality {q}", sizes["file"], raw, decoded,
                       images_u8, avif_quality=q, avif_speed=speed, count="file")
    rows += [row, recount(row, "AVIF, mdat payload", sizes["payload"], "payload", raw)]
  return rows
