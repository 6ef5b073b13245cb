"""The lecture's warning as a measurement: a codec learnt on one kind of image, used on another.

    python -m ae_jax.out_of_domain --workdir runs/dense --out runs/ood

Renders digits 0-9 from the fonts installed here with Pillow (28x28, white on black, like
MNIST), codes them with the run's autoencoder (trained on Fashion-MNIST) at each
quantization, and compares with JPEG at about the same bytes per image (its scan data
alone, the like-for-like count of rate_distortion.py), on the digits and on the run's own
test images. Writes ood.md, ood.csv, ood.json and ood.png (originals / autoencoder / JPEG rows
for both kinds of image) into --out.
"""
from __future__ import annotations

import glob
import os
import sys
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ae_jax.core import cli, files, quality
from ae_jax.compression import compress, rate_distortion
from ae_jax.core.errors import Report, UserError, run_cli
from ae_jax.training import runs

FONT_GLOBS = ("/usr/share/fonts/truetype/dejavu/*.ttf", "/usr/share/fonts/truetype/*/*.ttf",
              "/usr/share/fonts/**/*.ttf")
COLUMNS = ("images", "method", "setting", "bytes_per_image", "psnr", "ssim", "mse")


def find_fonts(limit: int = 8) -> list[str]:
  for pattern in FONT_GLOBS:
    fonts = sorted(glob.glob(pattern, recursive=True))
    if fonts:
      return fonts[:limit]
  return []


def render_digits(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
  """n uint8 images [n, size, size, 1] of digits (i % 10) in varied fonts, sizes and offsets."""
  rng = np.random.default_rng(seed)
  fonts = find_fonts()
  images = np.zeros((n, size, size, 1), np.uint8)
  labels = np.arange(n) % 10
  for i, digit in enumerate(labels):
    points = int(rng.integers(18, 25))
    font = (ImageFont.truetype(fonts[rng.integers(len(fonts))], points) if fonts
            else ImageFont.load_default(points))  # Pillow's own font when none is installed
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    # Centred like MNIST's digits, with a small random shift.
    x = (size - (right - left)) / 2 - left + rng.integers(-2, 3)
    y = (size - (bottom - top)) / 2 - top + rng.integers(-2, 3)
    draw.text((x, y), str(digit), fill=255, font=font)
    images[i, :, :, 0] = np.asarray(canvas)
  return images, labels


def jpeg_near(images_u8: np.ndarray, target_bytes: float,
              qualities: Sequence[int] = tuple(range(1, 96))) -> tuple[int, np.ndarray, float]:
  """(quality, decoded, bytes/image) of the JPEG whose scan data size is nearest target."""
  best = None
  for q in qualities:
    decoded, sizes = rate_distortion.jpeg(images_u8, q)
    scan = sizes["scan only"]
    if best is None or abs(scan - target_bytes) < abs(best[2] - target_bytes):
      best = (q, decoded, scan)
    if scan > target_bytes:  # sizes grow with quality: nothing further is nearer
      break
  return best


def compare(workdir: str, digits_u8: np.ndarray, in_domain_u8: np.ndarray,
            quants: Sequence[str] = ("uint8", "float16"),
            step: int | None = None) -> tuple[list[dict], dict]:
  """Rows (per kind of image and quantization: autoencoder, JPEG at its size) and, for the
  first quantization, the pictures' (originals, autoencoder, JPEG) images; the codes of
  checkpoint `step` (default: the latest)."""
  rows, shown = [], {}
  for name, images in (("digits", digits_u8), ("in domain", in_domain_u8)):
    for quant in quants:
      codes = compress.encode(workdir, images, quant, step=step)
      restored = quality.to_uint8(compress.decode(codes, workdir))
      q_jpeg, jpeg_images, jpeg_bytes = jpeg_near(images, codes.bytes_per_image)
      for method, setting, nbytes, out in (
          (f"autoencoder {quant}", rate_distortion.code_label(codes),
           codes.bytes_per_image, restored),
          ("JPEG, scan only", f"quality {q_jpeg}", jpeg_bytes, jpeg_images)):
        rows.append({"images": name, "method": method, "setting": setting,
                     "bytes_per_image": float(nbytes), **quality.report(out, images)})
      shown.setdefault(name, (images, restored, jpeg_images))
  return rows, shown


def save_picture(path: str, shown: dict, n: int = 10) -> None:
  from ae_jax.core import plots  # pylint: disable=import-outside-toplevel
  grid = []
  for name, (originals, restored, jpeg_images) in shown.items():
    grid += [(name, originals[:n] / 255.0), ("autoencoder", restored[:n] / 255.0),
             ("JPEG", jpeg_images[:n] / 255.0)]
  plots.save_grid(path, grid)


OUTPUTS = ("ood.md", "ood.csv", "ood.json", "ood.png")


def run(workdir: str, out: str, num_digits: int = 500,
        quants: Sequence[str] = ("uint8", "float16"), max_images: int | None = 1000,
        overwrite: bool = False, data_dir: str | None = None,
        idx_dir: str | None = None) -> list[dict]:
  files.check_output_folder(out, OUTPUTS, overwrite)  # before any work
  # No checkpoint: fail before --out is made. The step is pinned, as in rate_distortion.
  step = runs.run_identity(workdir)["step"]
  test_images, _ = rate_distortion.load_eval_images(workdir, max_images=max_images,
                                                    data_dir=data_dir, idx_dir=idx_dir)
  digits, _ = render_digits(num_digits)
  rows, shown = compare(workdir, digits, test_images, quants, step)
  # The four files appear together (or, after a failure or a stop, none of them).
  with files.output_set(out, OUTPUTS, overwrite) as staging:
    rate_distortion.write_table(staging, "ood", rows, COLUMNS,
                                source=f"autoencoder: {runs.run_summary(workdir, step)}")
    save_picture(os.path.join(staging, "ood.png"), shown)
  return rows


def _default_quants(workdir: str) -> str:
  """The run's own quantizations, at most two: a learned codec's or a VQ-VAE's coding
  (entropy, index), else uint8 and float16."""
  return ",".join(compress.run_quants(runs.read_run_config(workdir))[:2])


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.out_of_domain",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained run (e.g. on fashion_mnist)")
  parser.add_argument("--out", required=True, help="folder for ood.md/.csv/.json/.png")
  parser.add_argument("--num_digits", type=int, default=500)
  parser.add_argument("--max_images", type=cli.positive_int, default=1000,
                      help="in-domain test images")
  parser.add_argument("--overwrite", action="store_true", help="replace ood.* in --out")
  parser.add_argument("--quants", help="quantizations of the codes to compare (the first "
                      "is pictured; default: entropy for a learned codec's run, index for a "
                      "VQ-VAE's, else uint8,float16)")
  cli.add_run_data_flags(parser)
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> Report:
    quants = [q for q in (args.quants or _default_quants(args.workdir)).split(",") if q]
    if args.num_digits < 1 or not quants or set(quants) - set(compress.ALL_QUANTS):
      raise UserError(f"--num_digits must be positive and --quants a list of "
                      f"{','.join(compress.ALL_QUANTS)}")
    run(args.workdir, args.out, args.num_digits, quants, args.max_images, args.overwrite,
        args.data_dir, args.idx_dir)
    return Report(os.path.join(args.out, "ood.md"), f"wrote ood.png to {args.out}")
  return run_cli(work)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
