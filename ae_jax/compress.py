"""The autoencoder as a codec: `code = encoder(image)` to a codes file, `decoder(code)` back.

    python -m ae_jax.compress encode --workdir runs/dense --images pngs/ --out codes.aec
    python -m ae_jax.compress encode --workdir runs/dense --dataset fashion_mnist --split test \
        --quant uint8 --out test.aec
    python -m ae_jax.compress decode --workdir runs/dense --codes test.aec --out restored/ \
        --dataset fashion_mnist --split test        # optional originals: PSNR/SSIM of the round trip
    python -m ae_jax.compress info --codes test.aec

Encoding restores only the run's encoder, decoding only its decoder. Codes are stored as
float32, float16 or uint8; the codes file's format and the quantization live in
`ae_jax/codes.py`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ae_jax.codes import QUANTS, Codes, codes_to_bytes, load_codes, quantize
from ae_jax.config_lib import RESUMABLE_CHANGES, model_label
from ae_jax.errors import UserError, print_error
from ae_jax.workdir import checkpoint_steps, read_run_config


# ------------------------------------------------------------------------- codes

def save_codes(path: str, codes: Codes, overwrite: bool = False) -> int:
  """Writes `codes` to `path` (atomically); returns the file's size in bytes. An existing
  `path` is replaced only with `overwrite=True`."""
  _check_output_path(path, overwrite, "codes file", overwrite_flag="overwrite=True")
  data = codes_to_bytes(codes)
  _atomic_write(path, data)
  return len(data)


# ----------------------------------------------------------------------- the run

def run_identity(workdir: str, step: int | None = None) -> dict:
  """{"workdir", "config_hash", "step", "checkpoint_id"} naming a run's checkpoint (default:
  its latest)."""
  cfg = read_run_config(workdir)
  steps = checkpoint_steps(workdir)
  if not steps:
    raise UserError(f"{workdir} has no checkpoint yet: train it first "
                    f"(python launch.py --config configs/... --workdir {workdir})")
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise UserError(f"{workdir} has no checkpoint of step {step} (it keeps {steps}): "
                    "choose one of those steps")
  from ae_jax import checkpoint  # pylint: disable=import-outside-toplevel  (imports JAX)
  return {"workdir": os.path.abspath(workdir), "config_hash": config_hash(cfg), "step": step,
          "checkpoint_id": checkpoint.checkpoint_id(workdir, step)}


def run_summary(workdir: str, step: int) -> str:
  """Which run and checkpoint `step` a report measured (the step the report pinned, e.g.
  `run_identity(workdir)["step"]`), and how far that run had trained:
  '<workdir>, checkpoint step S (E of N epochs[; unfinished])', E from its metrics.jsonl
  (unknown without one)."""
  cfg = read_run_config(workdir)
  epochs = None
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      for line in f:
        try:
          row = json.loads(line)
          row_step, row_epoch = int(row["step"]), int(row["epoch"])
        except (ValueError, KeyError, TypeError, IndexError):
          continue  # not a row: training reports those; here the count is only a note
        epochs = max(epochs or 0, row_epoch if row_step <= step else 0)
  except OSError:
    pass
  total = cfg.get("num_epochs")
  if epochs is None:  # a copy without metrics.jsonl (decode needs only the checkpoints)
    return (f"{workdir}, checkpoint step {step} (of {total} epochs; how many were trained "
            "is unknown: no metrics.jsonl)")
  late = "" if epochs == total else "; unfinished"
  return f"{workdir}, checkpoint step {step} ({epochs} of {total} epochs{late})"


# What config_hash left out before more fields became resumable: codes files written then
# hold this form of the hash, and still decode.
_EARLIER_RESUMABLE = ("num_epochs", "progress_bar", "checkpoint_every_steps",
                      "checkpoints_to_keep", "learning_rate")


def config_hash(cfg: dict, left_out: Sequence[str] = RESUMABLE_CHANGES) -> str:
  """A short hash of a run's config.json, without the fields a resume may change."""
  # Fields a resume may change do not change which weights a step holds.
  kept = {k: v for k, v in cfg.items() if k not in left_out}
  if kept.get("loss_warmup_steps") == 0:  # no warm-up: the hash of runs from before the field
    del kept["loss_warmup_steps"]
  return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def _apply_batched(fn, x: np.ndarray, batch_size: int) -> np.ndarray:
  return np.concatenate([np.asarray(fn(x[i:i + batch_size]))
                         for i in range(0, len(x), batch_size)]) if len(x) else x


def encode(workdir: str, images_u8: np.ndarray, quant: str = "uint8", *,
           step: int | None = None, names: Sequence[str] | None = None,
           batch_size: int = 1000) -> Codes:
  """Codes of uint8 images [N, H, W, C] by the run's encoder (only the encoder is restored),
  quantized as `quant` (one of QUANTS; uint8 by default, as the CLI's)."""
  import jax  # pylint: disable=import-outside-toplevel
  from ae_jax import checkpoint  # pylint: disable=import-outside-toplevel
  if quant not in QUANTS:
    raise UserError(f"unknown quantization {quant!r}: choose one of {', '.join(QUANTS)}")
  run = run_identity(workdir, step)
  cfg = read_run_config(workdir)
  check_images(images_u8, tuple(cfg["image_shape"]), f"the images for {workdir}")
  if len(images_u8) == 0:
    raise UserError("no images to encode: give at least one")
  if names is not None and (len(names) != len(images_u8)
                            or not all(isinstance(n, str) for n in names)):
    raise UserError(f"{len(names)} names for {len(images_u8)} images: give one name (a "
                    "string) per image, or none")
  encoder, variables = checkpoint.restore_encoder(workdir, run["step"])
  apply = jax.jit(encoder.apply)
  codes = _apply_batched(lambda x: apply(variables, x.astype(np.float32) / 255.0),
                         np.asarray(images_u8), batch_size)
  code_shape = codes.shape[1:]
  values, offset, scale = quantize(codes.reshape(len(images_u8), -1), quant)
  return Codes(values=values, quant=quant, model=model_label(cfg),
               latent_dim=int(np.prod(code_shape)),
               code_shape=tuple(code_shape), image_shape=tuple(cfg["image_shape"]), run=run,
               offset=offset, scale=scale, names=list(names) if names is not None else None)


# Codes decode only with the checkpoint that made them: another step cannot stand in.
_CODES_NEED_IT = ("the codes were made by that checkpoint and decode only with it: encode "
                  "the images again from a good step")


def _for_codes(read):
  """read(the checkpoint module), a damaged checkpoint reported with the advice for codes."""
  from ae_jax import checkpoint  # pylint: disable=import-outside-toplevel  (imports JAX)
  try:
    return read(checkpoint)
  except checkpoint.DamagedCheckpoint as e:
    raise UserError(f"{e.what}: {_CODES_NEED_IT}") from None


def _same_checkpoint(codes: Codes, workdir: str) -> bool:
  """Whether `workdir` holds the very checkpoint that made `codes` (its step and identity),
  whatever resumable fields its config.json has changed since."""
  step, expected = codes.run.get("step"), codes.run.get("checkpoint_id")
  if expected is None or step not in checkpoint_steps(workdir):
    return False
  return _for_codes(lambda ckpt: ckpt.checkpoint_id(workdir, step)) == expected


def check_compatible(codes: Codes, workdir: str, source: str = "the codes") -> None:
  """Refuses to decode `codes` with a run other than the one that made them."""
  cfg = read_run_config(workdir)
  made_by = f"made by run {codes.run.get('workdir')}"
  run_k = cfg["encoder"].get("latent_dim")
  if model_label(cfg) != codes.model or (len(codes.code_shape) == 1 and run_k is not None
                                         and int(run_k) != codes.code_shape[0]):
    raise UserError(f"{source} come from a {codes.model} model with codes of shape "
                    f"{tuple(codes.code_shape)} ({made_by}) but {workdir} is a "
                    f"{model_label(cfg)} model"
                    + (f" with latent_dim {run_k}" if run_k is not None else "")
                    + f": decode with --workdir {codes.run.get('workdir')}")
  if (codes.run.get("config_hash") not in (config_hash(cfg),
                                           config_hash(cfg, _EARLIER_RESUMABLE))
      and not _same_checkpoint(codes, workdir)):
    raise UserError(f"{source} were {made_by} (config {codes.run.get('config_hash')}), not by "
                    f"{workdir} (config {config_hash(cfg)}): decode with --workdir "
                    f"{codes.run.get('workdir')}")
  steps = checkpoint_steps(workdir)
  if codes.run.get("step") not in steps:
    made_in = codes.run.get("workdir")
    if made_in and os.path.abspath(made_in) != os.path.abspath(workdir):
      # Another run of the same config (or a copy of this one): it may still have the step.
      raise UserError(f"{source} were {made_by} at checkpoint step {codes.run.get('step')}, "
                      f"which {workdir} does not have (it has {steps}): decode with "
                      f"--workdir {made_in}, or encode the images again")
    raise UserError(f"{source} were made by checkpoint step {codes.run.get('step')}, which "
                    f"{workdir} no longer keeps (it has {steps}): encode the images again")
  expected = codes.run.get("checkpoint_id")  # absent from codes files of earlier versions
  if expected is not None:
    if _for_codes(lambda ckpt: ckpt.checkpoint_id(workdir, codes.run["step"])) != expected:
      raise UserError(f"{source} were {made_by} from another checkpoint than step "
                      f"{codes.run['step']} of {workdir} (the same config and step, other "
                      f"weights: another run, or this one before a --restart): decode with "
                      f"the run that encoded them, or encode the images again")


def decode(codes: Codes, workdir: str, batch_size: int = 1000) -> np.ndarray:
  """Images [N, H, W, C] in [0, 1] = sigmoid(decoder(codes)) (only the decoder is restored)."""
  import jax  # pylint: disable=import-outside-toplevel
  check_compatible(codes, workdir)
  decoder, variables = _for_codes(lambda ckpt: ckpt.restore_decoder(workdir, codes.run["step"]))
  apply = jax.jit(lambda v, z: jax.nn.sigmoid(decoder.apply(v, z)))
  return _apply_batched(lambda z: apply(variables, z), codes.dequantized(), batch_size)


# ------------------------------------------------------------------------- images

def check_images(images: np.ndarray, image_shape: tuple[int, ...], what: str) -> None:
  if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
    raise UserError(f"{what} have shape {tuple(images.shape[1:])} (H, W, C) but the run "
                    f"takes {tuple(image_shape)}: give images of that size")
  if images.dtype != np.uint8:
    raise UserError(f"{what} are {images.dtype}, not uint8 pixels: give 8-bit images")


def read_png_folder(path: str, image_shape: tuple[int, ...],
                    max_images: int | None = None) -> tuple[np.ndarray, list[str]]:
  """uint8 images [N, H, W, C] of every *.png in folder `path` (sorted by name; the first
  `max_images` of them if given), or of the one file `path`, and their names without the
  extension."""
  if os.path.isfile(path):
    path, names = os.path.dirname(path) or ".", [os.path.basename(path)]
  elif os.path.isdir(path):
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(".png"))
  else:
    raise UserError(f"--images {path} does not exist: give a folder of PNG images")
  if not names:
    raise UserError(f"--images {path} holds no .png files: give a folder of PNG images")
  names = names[:max_images]
  h, w, c = image_shape
  mode = {1: "L", 3: "RGB"}.get(c)
  images = []
  for name in names:
    file = os.path.join(path, name)
    try:
      with Image.open(file) as im:
        im.load()
        size, im_mode = im.size, im.mode
        pixels = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError) as e:
      raise UserError(f"cannot read image {file} ({type(e).__name__}): give readable PNG "
                      "files") from None
    if size != (w, h):
      raise UserError(f"image {file} is {size[0]}x{size[1]} but the run takes {w}x{h}: "
                      "resize it to that size")
    if im_mode != mode:
      fix = (f"scale it to 8 bits first (16-bit pixels // 257; Image.convert({mode!r}) "
             "clips them)" if im_mode.startswith("I") else f"convert it, e.g. "
             f"Image.convert({mode!r})")
      raise UserError(f"image {file} has mode {im_mode} but the run takes {c}-channel "
                      f"8-bit images (mode {mode}): {fix}")
    images.append(pixels.reshape(h, w, c))
  stems = [os.path.splitext(n)[0] for n in names]
  twins = [n for n in names if stems.count(os.path.splitext(n)[0]) > 1]
  if twins:  # decode names its PNGs after these: each must be distinct
    raise UserError(f"--images {path} holds {' and '.join(twins[:2])}, one name once the "
                    ".png is dropped: rename one of them")
  return np.stack(images), stems


def write_png_folder(path: str, images_u8: np.ndarray, names: Sequence[str] | None,
                     overwrite: bool = False) -> int:
  """Writes one PNG per image into folder `path`: a new folder, or with `overwrite` an
  existing one, where files of the same names are replaced and the others kept. Returns
  how many other .png files the folder holds (earlier outputs, say)."""
  _check_output_path(path, overwrite, "--out", folder=True)
  names = list(names) if names is not None else [f"{i:05d}" for i in range(len(images_u8))]
  if len(set(names)) != len(names) or any(os.sep in n or n in ("", ".", "..") for n in names):
    raise UserError("the codes file's image names are not distinct file names: "
                    "encode the images again")
  parent = os.path.dirname(os.path.abspath(path))
  # A new folder is filled under a temporary name and renamed: no half-written output.
  new, target = not os.path.isdir(path), None
  try:
    target = tempfile.mkdtemp(dir=parent, prefix=".decode-") if new else path
    if new:  # mkdtemp makes it private (0700); a folder of outputs gets the umask's mode
      umask = os.umask(0)
      os.umask(umask)
      os.chmod(target, 0o777 & ~umask)
    for name, image in zip(names, images_u8):
      Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
          os.path.join(target, name + ".png"))
    if new:
      os.rename(target, path)
  except OSError as e:
    if new and target is not None:
      shutil.rmtree(target, ignore_errors=True)
    raise UserError(f"cannot write the images to {path} ({e.strerror or e}): choose a "
                    "writable --out with free space") from None
  ours = {name + ".png" for name in names}
  return sum(1 for n in os.listdir(path) if n.lower().endswith(".png") and n not in ours)


def _check_output_path(path: str, overwrite: bool, flag: str, folder: bool = False,
                       overwrite_flag: str = "--overwrite") -> None:
  if os.path.exists(path):
    if folder != os.path.isdir(path):  # first: --overwrite would not help
      kind = "a folder" if folder else "a file"
      is_kind = "a file" if folder else "a folder"
      raise UserError(f"{flag} {path} is {is_kind}, not {kind}: choose another path")
    if not overwrite:
      raise UserError(f"{flag} {path} already exists: choose another path or pass "
                      f"{overwrite_flag}")
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise UserError(f"the folder of {flag} {path} does not exist: create {parent} first")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f"{parent} is not writable: choose another {flag}")


def check_output_folder(folder: str, names: Sequence[str], overwrite: bool = False,
                        flag: str = "--out") -> None:
  """Refuses, without making anything, a `folder` that is a file, that cannot be made or
  written, or that holds any of the files `names` (unless `overwrite`)."""
  if os.path.exists(folder) and not os.path.isdir(folder):
    raise UserError(f"{flag} {folder} is a file: choose a folder")
  clash = [n for n in names if os.path.exists(os.path.join(folder, n))]
  if clash and not overwrite:
    raise UserError(f"{flag} {folder} already holds {', '.join(clash)}: choose another "
                    f"{flag} or pass --overwrite")
  nearest = os.path.abspath(folder)
  while not os.path.exists(nearest):
    nearest = os.path.dirname(nearest)
  if not os.path.isdir(nearest) or not os.access(nearest, os.W_OK | os.X_OK):
    raise UserError(f"{flag} {folder} cannot be made or written there ({nearest}): choose a "
                    "writable folder")


def prepare_output_folder(folder: str, names: Sequence[str], overwrite: bool = False,
                          flag: str = "--out") -> None:
  """`check_output_folder`, then makes `folder` (and its parents), for tools that write
  reports into it."""
  check_output_folder(folder, names, overwrite, flag)
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create {flag} {folder} ({e.strerror}): choose a writable "
                    "folder") from None
  if not os.access(folder, os.W_OK | os.X_OK):
    raise UserError(f"{flag} {folder} is not writable: choose a writable folder")


def positive_int(text: str) -> int:
  """argparse type: an integer >= 1."""
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
  return value


def _atomic_write(path: str, data: bytes) -> None:
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise UserError(f"cannot write {path} ({e.strerror}): choose a writable path") from None


# --------------------------------------------------------------------------- CLI

def load_source(args) -> tuple[np.ndarray, list[str] | None, str]:
  """(uint8 images, names or None, description) from --images or --dataset/--split."""
  cfg = read_run_config(args.workdir)
  if args.images:
    images, names = read_png_folder(args.images, tuple(cfg["image_shape"]), args.max_images)
    return images, names, args.images
  from ae_jax import data  # pylint: disable=import-outside-toplevel  (TensorFlow: seconds)
  # The run's own dataset is found where the run found it, unless told otherwise.
  same = args.dataset == cfg.get("dataset")
  data_dir = args.data_dir or (cfg.get("data_dir") if same else None)
  idx_dir = args.idx_dir or (cfg.get("idx_dir", data.DEFAULT_IDX_DIR) if same
                             else data.DEFAULT_IDX_DIR)
  builder = data.get_builder(args.dataset, data_dir, idx_dir, options="--")
  data.num_examples(builder, args.split, flag="--split")
  images = data.load_images(builder, args.split, args.max_images)
  return images, None, f"{args.dataset}:{args.split}"


def _summary(codes: Codes, file_bytes: int) -> str:
  raw = int(np.prod(codes.image_shape))
  per_file = file_bytes / max(codes.num_images, 1)
  return (f"{codes.num_images} images, {codes.model} code {codes.code_shape} as {codes.quant}: "
          f"{codes.bytes_per_image} B/image ({per_file:.1f} B/image with the header), "
          f"{raw / codes.bytes_per_image:.1f}x smaller than the raw {raw} B")


def cmd_encode(args) -> None:
  _check_output_path(args.out, args.overwrite, "--out")  # fail before any work
  images, names, source = load_source(args)
  codes = encode(args.workdir, images, args.quant, step=args.step, names=names)
  size = save_codes(args.out, codes, args.overwrite)
  print(f"encoded {source} -> {args.out}: {_summary(codes, size)}")


def cmd_decode(args) -> None:
  codes = load_codes(args.codes)
  if args.images:
    originals = args.images if os.path.isdir(args.images) else os.path.dirname(args.images)
    if os.path.realpath(args.out) == os.path.realpath(originals or "."):
      raise UserError(f"--out {args.out} is where the --images originals are: the restored "
                      "images would replace them; give another --out")
  _check_output_path(args.out, args.overwrite, "--out", folder=True)
  check_compatible(codes, args.workdir, f"the codes in {args.codes}")
  reference = None
  if args.images or args.dataset:
    reference, _, source = load_source(args)
    check_images(reference, codes.image_shape, source)
    if reference.shape[0] != codes.num_images:
      raise UserError(f"{source} holds {len(reference)} images but {args.codes} holds "
                      f"{codes.num_images} codes: give the images that were encoded")
  from ae_jax import quality  # pylint: disable=import-outside-toplevel
  restored = quality.to_uint8(decode(codes, args.workdir))
  others = write_png_folder(args.out, restored, codes.names, args.overwrite)
  line = (f"decoded {args.codes} -> {os.path.join(args.out, '')}: "
          f"{_summary(codes, os.path.getsize(args.codes))}")
  if others:
    line += f" ({args.out} also holds {others} other .png files, kept)"
  if reference is not None:
    q = quality.report(restored, reference)
    line += f"; round trip vs {source}: PSNR {q['psnr']:.2f} dB, SSIM {q['ssim']:.4f}"
  print(line)


def cmd_info(args) -> None:
  codes = load_codes(args.codes)
  print(f"{args.codes}: {_summary(codes, os.path.getsize(args.codes))}; made by "
        f"{codes.run['workdir']} step {codes.run['step']} (config {codes.run['config_hash']})")


def quiet_logs() -> None:
  """Keeps library chatter (tfds, orbax via absl) off stderr, where errors are one line."""
  from absl import logging  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.ERROR)


class OneLineParser(argparse.ArgumentParser):
  """argparse that reports a bad command line in one line (and exit code 2)."""

  def error(self, message):
    self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _add_source_flags(p: argparse.ArgumentParser, what: str) -> None:
  p.add_argument("--images", help=f"folder of PNG images ({what})")
  p.add_argument("--dataset", help=f"tfds dataset name ({what}), e.g. fashion_mnist")
  p.add_argument("--split", default="test", help="tfds split (default: test)")
  p.add_argument("--data_dir", help="tfds data_dir (default: the run's for its dataset, "
                 "else tfds' own)")
  p.add_argument("--idx_dir", help="folder of the dataset's four MNIST-format IDX files, to "
                 "prepare it from when data_dir lacks it (default: the run's for its "
                 "dataset, else Debian's Fashion-MNIST folder)")
  p.add_argument("--max_images", type=positive_int,
                 help="only the first N images (of the split, or of --images by name)")


def add_run_data_flags(p: argparse.ArgumentParser) -> None:
  """--data_dir / --idx_dir for the tools that read a run's own dataset (its config.json
  says where; these say where it is now, e.g. on another machine)."""
  p.add_argument("--data_dir", help="tfds data_dir holding the run's dataset (default: the "
                 "run's config.json data_dir)")
  p.add_argument("--idx_dir", help="folder of the dataset's four MNIST-format IDX files, to "
                 "prepare it from when data_dir lacks it (default: the run's)")


def run_dataset(cfg: dict, data_dir: str | None = None, idx_dir: str | None = None):
  """The tfds builder of a run's dataset: where the run's config.json says, unless
  `data_dir` / `idx_dir` (the tools' --data_dir / --idx_dir, which its messages name)."""
  from ae_jax import data  # pylint: disable=import-outside-toplevel
  return data.get_builder(
      cfg["dataset"], data_dir or cfg.get("data_dir"), idx_dir or cfg.get("idx_dir"),
      options="--", dataset_fix="the run's config.json names it, and this tfds does not "
      "know it: install the package that registers it, or use a run of a known dataset")


def make_parser() -> argparse.ArgumentParser:
  parser = OneLineParser(prog="python -m ae_jax.compress", description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
  enc = sub.add_parser("encode", help="images -> codes file (restores only the encoder)")
  enc.add_argument("--workdir", required=True, help="the training run's workdir")
  _add_source_flags(enc, "to encode")
  enc.add_argument("--quant", choices=QUANTS, default="uint8",
                   help="how each code value is stored (default: uint8, 8-bit affine)")
  enc.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
  enc.add_argument("--out", required=True, help="codes file to write (.aec)")
  enc.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  dec = sub.add_parser("decode", help="codes file -> PNG folder (restores only the decoder)")
  dec.add_argument("--workdir", required=True, help="the run that made the codes")
  dec.add_argument("--codes", required=True, help="codes file written by encode")
  _add_source_flags(dec, "optional: the originals, to report PSNR/SSIM of the round trip")
  dec.add_argument("--out", required=True, help="folder for the PNGs (must not exist)")
  dec.add_argument("--overwrite", action="store_true", help="write into an existing --out")
  info = sub.add_parser("info", help="what a codes file holds")
  info.add_argument("--codes", required=True)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  parser = make_parser()
  args = parser.parse_args(argv)
  quiet_logs()
  try:
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
  except UserError as e:
    return print_error(e)
  return 0


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only reads tfds data here
  sys.exit(main())
