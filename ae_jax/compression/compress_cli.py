"""The command line of `ae_jax.compression.compress`: python -m ae_jax.compress encode|decode|info ...
(the usage is in ae_jax/compression/compress.py's docstring)."""
from __future__ import annotations

import argparse
import os
from typing import Sequence

import numpy as np

from ae_jax.compression import compress
from ae_jax.core.cli import OneLineParser, positive_int, quiet_logs
from ae_jax.compression.codes import ALL_QUANTS, Codes, load_codes
from ae_jax.compression.hyper_codes import HyperCodes
from ae_jax.core.errors import UserError, run_cli
from ae_jax.core.files import check_output_path, read_png_folder, write_png_folder
from ae_jax.training.workdir import read_run_config
from ae_jax.training import runs


def load_source(args) -> tuple[np.ndarray, list[str] | None, str]:
  """(uint8 images, names or None, description) from --images or --dataset/--split."""
  cfg = read_run_config(args.workdir)
  if args.images:
    # A hyperprior codec takes images of any size (its codes keep each one's).
    images, names = read_png_folder(args.images, tuple(cfg["image_shape"]), args.max_images,
                                    any_size=runs.is_hyperprior(cfg))
    return images, names, args.images
  from ae_jax.data import folder  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel  (TensorFlow: seconds)
  # The run's own dataset is found where the run found it, unless told otherwise.
  same = folder.normalized(args.dataset) == cfg.get("dataset")
  data_dir = args.data_dir or (cfg.get("data_dir") if same else None)
  idx_dir = args.idx_dir or (cfg.get("idx_dir", data.DEFAULT_IDX_DIR) if same
                             else data.DEFAULT_IDX_DIR)
  builder = data.get_builder(args.dataset, data_dir, idx_dir, options="--",
                             test_fraction=cfg.get("test_fraction", 0.1) if same else 0.1)
  data.num_examples(builder, args.split, flag="--split")
  source = f"{args.dataset}:{args.split}"
  # The run's size: centre crops of larger images (a codes file holds one image shape).
  images = runs.run_images(data.load_images(builder, args.split, args.max_images),
                           tuple(cfg["image_shape"]), source)
  return images, None, source


def _summary(codes: Codes, file_bytes: int) -> str:
  raw = getattr(codes, "raw_bytes_per_image", None) or int(np.prod(codes.image_shape))
  per_file = file_bytes / max(codes.num_images, 1)
  return (f"{codes.num_images} images, {codes.model} code {codes.code_shape} as {codes.quant}: "
          f"{codes.bytes_per_image:g} B/image ({per_file:.1f} B/image with the header), "
          f"{raw / codes.bytes_per_image:.1f}x smaller than the raw {raw} B")


def cmd_encode(args) -> None:
  check_output_path(args.out, args.overwrite, "--out")  # fail before any work
  images, names, source = load_source(args)
  quant = args.quant or compress.default_quant(args.workdir)
  codes = compress.encode(args.workdir, images, quant, step=args.step, names=names)
  size = compress.save_codes(args.out, codes, args.overwrite)
  print(f"encoded {source} -> {args.out}: {_summary(codes, size)}")


def cmd_decode(args) -> None:
  codes = load_codes(args.codes)
  if args.images:
    originals = args.images if os.path.isdir(args.images) else os.path.dirname(args.images)
    if os.path.realpath(args.out) == os.path.realpath(originals or "."):
      raise UserError(f"--out {args.out} is where the --images originals are: the restored "
                      "images would replace them; give another --out")
  check_output_path(args.out, args.overwrite, "--out", folder=True)
  compress.check_compatible(codes, args.workdir, f"the codes in {args.codes}")
  reference = None
  if args.images or args.dataset:
    reference, _, source = load_source(args)
    if not isinstance(codes, HyperCodes):
      runs.check_images(reference, codes.image_shape, source)
    if len(reference) != codes.num_images:
      raise UserError(f"{source} holds {len(reference)} images but {args.codes} holds "
                      f"{codes.num_images} codes: give the images that were encoded")
    if isinstance(codes, HyperCodes):  # images of their own sizes
      for i, shape in enumerate(codes.image_shapes):
        runs.check_images(np.asarray(reference[i])[None], tuple(shape), f"{source}'s image {i}")
  from ae_jax.core import quality  # pylint: disable=import-outside-toplevel
  decoded = compress.decode(codes, args.workdir)
  restored = ([quality.to_uint8(im) for im in decoded] if isinstance(decoded, list)
              else quality.to_uint8(decoded))
  others = write_png_folder(args.out, restored, codes.names, args.overwrite)
  line = (f"decoded {args.codes} -> {os.path.join(args.out, '')}: "
          f"{_summary(codes, os.path.getsize(args.codes))}")
  if others:
    line += f" ({args.out} also holds {others} other .png files, kept)"
  if reference is not None:
    q = _quality(restored, reference)
    line += f"; round trip vs {source}: PSNR {q['psnr']:.2f} dB, SSIM {q['ssim']:.4f}"
  print(line)


def _quality(restored, reference) -> dict[str, float]:
  """quality.report of the round trip; for images of several sizes, each image's report
  averaged (as report's own means over images)."""
  from ae_jax.core import quality  # pylint: disable=import-outside-toplevel
  if not isinstance(restored, list):
    return quality.report(restored, reference)
  rows = [quality.report(r[None], np.asarray(t)[None]) for r, t in zip(restored, reference)]
  return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def cmd_info(args) -> None:
  codes = load_codes(args.codes)
  print(f"{args.codes}: {_summary(codes, os.path.getsize(args.codes))}; made by "
        f"{codes.run['workdir']} step {codes.run['step']} (config {codes.run['config_hash']})")


def _add_source_flags(p: argparse.ArgumentParser, what: str) -> None:
  p.add_argument("--images", help=f"folder of PNG images ({what})")
  p.add_argument("--dataset", help=f"tfds dataset name or folder:DIR ({what}), e.g. "
                 "fashion_mnist")
  p.add_argument("--split", default="test", help="tfds split (default: test)")
  p.add_argument("--data_dir", help="tfds data_dir (default: the run's for its dataset, "
                 "else tfds' own)")
  p.add_argument("--idx_dir", help="folder of the dataset's four MNIST-format IDX files, to "
                 "prepare it from when data_dir lacks it (default: the run's for its "
                 "dataset, else Debian's Fashion-MNIST folder)")
  p.add_argument("--max_images", type=positive_int,
                 help="only the first N images (of the split, or of --images by name)")


def make_parser() -> argparse.ArgumentParser:
  parser = OneLineParser(prog="python -m ae_jax.compress",
                         description=compress.__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
  enc = sub.add_parser("encode", help="images -> codes file (restores only the encoder)")
  enc.add_argument("--workdir", required=True, help="the training run's workdir")
  _add_source_flags(enc, "to encode")
  enc.add_argument("--quant", choices=ALL_QUANTS,
                   help="how each code value is stored (default: uint8, 8-bit affine; for "
                   "a VQ-VAE run, index: codebook indices of ceil(log2 K) bits; for a "
                   "learned codec's run, entropy: range coded with its prior)")
  enc.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
  enc.add_argument("--out", required=True, help="codes file to write (.aec)")
  enc.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  dec = sub.add_parser("decode", help="codes file -> PNG folder (restores only the decoder)")
  dec.add_argument("--workdir", required=True, help="the run that made the codes")
  dec.add_argument("--codes", required=True, help="codes file written by encode")
  _add_source_flags(dec, "optional: the originals, to report PSNR/SSIM of the round trip")
  dec.add_argument("--out", required=True, help="folder for the PNGs (must not exist, or "
                   "be empty)")
  dec.add_argument("--overwrite", action="store_true", help="write into an existing --out")
  info = sub.add_parser("info", help="what a codes file holds")
  info.add_argument("--codes", required=True)
  return parser


def run_command(args) -> None:
  if args.command == "encode":
    if bool(args.images) == bool(args.dataset):
      raise UserError("give the images to encode: either --images FOLDER or --dataset NAME")
    cmd_encode(args)
  elif args.command == "decode":
    if args.images and args.dataset:
      raise UserError("give the originals with --images or --dataset, not both")
    cmd_decode(args)
  else:
    cmd_info(args)


def main(argv: Sequence[str] | None = None) -> int:
  args = make_parser().parse_args(argv)
  quiet_logs()
  return run_cli(lambda: run_command(args))
