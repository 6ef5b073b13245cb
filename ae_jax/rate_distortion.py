"""Quality against size: a trained run's codes at each quantization next to PNG and JPEG.

    python -m ae_jax.rate_distortion --workdir runs/dense --out runs/rd

For every method, bytes per image and the mean MSE, PSNR, SSIM and BCE of what a user gets
back (uint8 pixels) against the originals (by default the run's eval split). Writes
rd.md, rd.csv, rd.json and rd.png (PSNR and SSIM against bytes/image) into --out.

What the bytes count: for the autoencoder, one image's code (the decoder's weights and the
quantization parameters are shared by every image, like a codec's tables); for PNG, the
whole file; for JPEG three ways: the whole file ("JPEG file"), the file without its
quantization and Huffman tables ("JPEG, tables shared": Pillow's abbreviated
`streamtype=2` stream, still ~45 B of per-image markers) and the entropy-coded scan data
alone ("JPEG, scan only": what a container that knows the image size and tables would
store). The last is the like-for-like match for the autoencoder's count.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import os
import sys
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ae_jax import cli, compress, files, progress, quality
from ae_jax.errors import Report, UserError, run_cli, writing

JPEG_QUALITIES = (1, 5, 10, 20, 30, 50, 75, 90, 95)
COLUMNS = ("method", "setting", "bytes_per_image", "ratio", "mse", "psnr", "ssim", "bce")


# --------------------------------------------------------------------------- codecs

def _row(method: str, setting: str, nbytes: float, raw: int, restored_u8: np.ndarray,
         originals_u8: np.ndarray, **extra) -> dict:
  q = quality.report(restored_u8, originals_u8)
  if q["mse"] == 0:
    q["psnr"] = math.inf  # lossless (metrics.psnr would print its 100 dB floor)
  return {"method": method, "setting": setting, "bytes_per_image": float(nbytes),
          "ratio": raw / nbytes, **q, **extra}


def code_label(codes: compress.Codes) -> str:
  """'dense K=64' for a flat code, or 'conv 4x4x8' (the code's shape)."""
  if len(codes.code_shape) == 1:
    return f"{codes.model} K={codes.code_shape[0]}"
  return f"{codes.model} {'x'.join(map(str, codes.code_shape))}"


def autoencoder_rows(workdir: str, images_u8: np.ndarray,
                     quants: Sequence[str] = compress.QUANTS, label: str | None = None,
                     step: int | None = None) -> list[dict]:
  """One row per quantization of the codes of checkpoint `step` (default: the latest;
  the float encoder runs once). A VQ-VAE run's row is its index codes (`quants` aside):
  bytes per image = the packed indices."""
  raw = int(np.prod(images_u8.shape[1:]))
  if compress.is_vq_run(compress.read_run_config(workdir)):
    quants = (compress.INDEX,)
  codes32 = compress.encode(workdir, images_u8, "float32", step=step)
  label = label or code_label(codes32)
  rows = []
  for quant in quants:
    if quant == compress.INDEX:
      codes = compress.encode(workdir, images_u8, quant, step=step)
    else:
      values, offset, scale = compress.quantize(codes32.values, quant)
      codes = dataclasses.replace(codes32, values=values, quant=quant, offset=offset,
                                  scale=scale)
    restored = quality.to_uint8(compress.decode(codes, workdir))
    file_bytes = len(compress.codes_to_bytes(codes)) / len(images_u8)
    rows.append(_row(f"autoencoder {quant}", label, codes.bytes_per_image, raw, restored,
                     images_u8, file_bytes_per_image=file_bytes, quant=quant,
                     latent_dim=codes.latent_dim))
  return rows


def _pil(image_u8: np.ndarray) -> Image.Image:
  return Image.fromarray(image_u8[..., 0] if image_u8.shape[-1] == 1 else image_u8)


def _as_batch(images: list[np.ndarray], like: np.ndarray) -> np.ndarray:
  return np.stack(images).reshape(like.shape)


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


def jpeg_rows(images_u8: np.ndarray, qualities: Sequence[int] = JPEG_QUALITIES) -> list[dict]:
  """Three rows per quality, one per way of counting the bytes (same pictures)."""
  raw = int(np.prod(images_u8.shape[1:]))
  rows = []
  for q in qualities:
    decoded, sizes = jpeg(images_u8, q)
    row = _row("JPEG file", f"quality {q}", sizes["file"], raw, decoded, images_u8,
               jpeg_quality=q)
    rows.append(row)
    for count in ("tables shared", "scan only"):
      rows.append({**row, "method": f"JPEG, {count}", "bytes_per_image": sizes[count],
                   "ratio": raw / sizes[count]})
  return rows


def png_row(images_u8: np.ndarray) -> dict:
  """PNG (lossless, optimize=True): mean file bytes; decoding gives the originals back."""
  decoded, total = [], 0
  for image in images_u8:
    buf = io.BytesIO()
    _pil(image).save(buf, "PNG", optimize=True)
    total += buf.tell()
    decoded.append(np.asarray(Image.open(buf)))
  raw = int(np.prod(images_u8.shape[1:]))
  return _row("PNG", "lossless", total / len(images_u8), raw, _as_batch(decoded, images_u8),
              images_u8)


# --------------------------------------------------------------------------- outputs

def _fmt(value) -> str:
  if isinstance(value, float):
    if math.isinf(value):
      return "inf"
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
  return str(value)


def write_table(out: str, name: str, rows: list[dict], columns: Sequence[str],
                source: str | None = None) -> None:
  """name.md (markdown, headed by `source`: what was measured), name.csv and name.json (all
  fields; inf PSNR as null) in `out`."""
  with open(os.path.join(out, f"{name}.md"), "w") as f:
    if source:
      f.write(f"{source}\n\n")
    f.write("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
    for r in rows:
      f.write("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |\n")
  with open(os.path.join(out, f"{name}.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in r.items()} for r in rows]
  with open(os.path.join(out, f"{name}.json"), "w") as f:
    json.dump(clean, f, indent=1)


def plot(path: str, rows: list[dict], title: str, raw_bytes: int) -> None:
  """PSNR and SSIM against bytes/image (log scale), one curve per method; `raw_bytes`: an
  uncompressed image's size, for the axis label."""
  from ae_jax import plots  # pylint: disable=import-outside-toplevel,unused-import  (Agg backend)
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from matplotlib import ticker  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  sizes = [r["bytes_per_image"] for r in rows]
  ticks = [2**i for i in range(0, 14) if min(sizes) / 2 <= 2**i <= max(sizes) * 2]
  methods = list(dict.fromkeys(r["method"] for r in rows))
  for ax, metric, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
    for method in methods:
      pts = sorted((r["bytes_per_image"], r[metric], r["setting"]) for r in rows
                   if r["method"] == method)
      if method == "PNG":  # lossless: a vertical line at its size, not a point at infinity
        ax.axvline(pts[0][0], color="gray", ls=":", label=f"PNG lossless ({pts[0][0]:.0f} B)")
        continue
      style = "o-" if method.startswith("autoencoder") else "s--"
      ax.plot([p[0] for p in pts], [p[1] for p in pts], style, ms=4, label=method)
      if method.startswith("autoencoder") and len({p[2] for p in pts}) > 1:
        for x, y, s in pts:  # the sweep: say which K each point is
          ax.annotate(s.split("=")[-1], (x, y), fontsize=7, xytext=(2, 3),
                      textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xticks(ticks)  # plain numbers: log-scale's default labels overlap here
    ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel(f"bytes per image (raw: {raw_bytes})")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, which="both")
  axes[0].legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


# ------------------------------------------------------------------------------ CLI

def eval_source(workdir: str, split: str | None = None, data_dir: str | None = None,
                idx_dir: str | None = None):
  """(tfds builder, split, run config) of the run's dataset (its eval split unless told;
  where its config.json says, unless `data_dir` / `idx_dir`); an unknown or empty split is
  refused here, in seconds."""
  from ae_jax import checkpoint, data  # pylint: disable=import-outside-toplevel
  cfg = checkpoint.read_run_config(workdir)
  builder = cli.run_dataset(cfg, data_dir, idx_dir)
  split = split or cfg["eval_split"]
  data.num_examples(builder, split, flag="--split")
  return builder, split, cfg


def load_eval_images(workdir: str, split: str | None = None, max_images: int | None = None,
                     data_dir: str | None = None,
                     idx_dir: str | None = None) -> tuple[np.ndarray, dict]:
  """The uint8 images of the run's dataset (its eval split unless told), and the config."""
  from ae_jax import data  # pylint: disable=import-outside-toplevel
  builder, split, cfg = eval_source(workdir, split, data_dir, idx_dir)
  return data.load_images(builder, split, max_images), cfg


def measure(images_u8: np.ndarray, autoencoders: Callable[[], list[dict]],
            jpeg_qualities: Sequence[int] = JPEG_QUALITIES) -> list[dict]:
  """The rows of `autoencoders()`, PNG and JPEG at each quality, in that order, with one
  progress line (on a terminal) for them all."""
  jobs = [("autoencoder", autoencoders), ("PNG", lambda: [png_row(images_u8)])]
  jobs += [(f"JPEG quality {q}", functools.partial(jpeg_rows, images_u8, [q]))
           for q in jpeg_qualities]
  rows = []
  with progress.bar(len(jobs), "measuring", "codec") as line:
    for name, job in jobs:
      line.set_postfix_str(name)
      rows += job()
      line.update()
  return rows


OUTPUTS = ("rd.md", "rd.csv", "rd.json", "rd.png")


def run(workdir: str, out: str, *, split: str | None = None, max_images: int | None = None,
        jpeg_qualities: Sequence[int] = JPEG_QUALITIES, overwrite: bool = False,
        data_dir: str | None = None, idx_dir: str | None = None) -> list[dict]:
  """Measures every method on the run's eval images and writes the table and plot
  (refused before any work if they exist in `out`, unless `overwrite`)."""
  from ae_jax import data  # pylint: disable=import-outside-toplevel
  # A run without a checkpoint fails here, before any work. The step is pinned: a run
  # still training in `workdir` must not change which checkpoint the report names.
  step = compress.run_identity(workdir)["step"]
  # So does a bad split or missing data, before --out is made.
  builder, split, cfg = eval_source(workdir, split, data_dir, idx_dir)
  files.prepare_output_folder(out, OUTPUTS, overwrite)
  images = data.load_images(builder, split, max_images)
  rows = measure(images, lambda: autoencoder_rows(workdir, images, step=step),
                 jpeg_qualities)
  with writing(", ".join(OUTPUTS), out, "--out"):
    write_table(out, "rd", rows, COLUMNS + ("file_bytes_per_image",),
                source=f"{len(images)} {cfg['dataset']} {split} images; autoencoder: "
                       f"{compress.run_summary(workdir, step)}")
    plot(os.path.join(out, "rd.png"), rows,
         f"{cfg['dataset']} {split}, {len(images)} images: {workdir}",
         images[0].size)
  return rows


def parse_ints(text: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(",") if v.strip()]
  except ValueError:
    raise UserError(f"{text!r} is not a comma-separated list of integers, e.g. 1,5,10") from None
  if not values:
    raise UserError("give at least one value, e.g. 1,5,10")
  return values


def parse_qualities(text: str) -> list[int]:
  """--jpeg_qualities: comma-separated integers in Pillow's useful range 1..95."""
  qualities = parse_ints(text)
  if not all(1 <= q <= 95 for q in qualities):
    raise UserError("--jpeg_qualities must lie in 1..95 (Pillow's useful range)")
  return qualities


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.rate_distortion",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained run")
  parser.add_argument("--out", required=True, help="folder for rd.md/.csv/.json/.png")
  parser.add_argument("--split", help="split to measure on (default: the run's eval split)")
  parser.add_argument("--max_images", type=cli.positive_int,
                      help="only the first N images")
  parser.add_argument("--jpeg_qualities", default=",".join(map(str, JPEG_QUALITIES)))
  parser.add_argument("--overwrite", action="store_true", help="replace rd.* in --out")
  cli.add_run_data_flags(parser)
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> Report:
    qualities = parse_qualities(args.jpeg_qualities)
    rows = run(args.workdir, args.out, split=args.split, max_images=args.max_images,
               jpeg_qualities=qualities, overwrite=args.overwrite, data_dir=args.data_dir,
               idx_dir=args.idx_dir)
    return Report(os.path.join(args.out, "rd.md"),
                  f"wrote {len(rows)} rows and rd.png to {args.out}")
  return run_cli(work)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
