"""The autoencoder as a codec: `code = encoder(image)` to a codes file, `decoder(code)` back.

    python -m ae_jax.compress encode --workdir runs/dense --images pngs/ --out codes.aec
    python -m ae_jax.compress encode --workdir runs/dense --dataset fashion_mnist --split test \
        --quant uint8 --out test.aec
    python -m ae_jax.compress decode --workdir runs/dense --codes test.aec --out restored/ \
        --dataset fashion_mnist --split test        # optional originals: PSNR/SSIM of the round trip
    python -m ae_jax.compress info --codes test.aec

Encoding restores only the run's encoder, decoding only its decoder. Codes are stored as
float32, float16 or uint8, and a VQ-VAE's as codebook indices ('index', its default); the
codes file's format and the quantization live in
`ae_jax/compression/codes.py`; reading and writing image folders in `ae_jax/core/files.py`; the command
line in `ae_jax/compression/compress_cli.py`.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

# The codes file's names are importable from here too (the codec's API: README, tests).
# pylint: disable=unused-import
from ae_jax.compression.codes import (ALL_QUANTS, ENTROPY, INDEX, QUANTS, Codes, channels_of,
                                      check_finite, codes_from_bytes, codes_to_bytes,
                                      load_codes, pack_indices, quantize)
from ae_jax.compression.hyper_codes import HyperCodes
from ae_jax.core.errors import UserError
from ae_jax.core.files import atomic_write, check_output_path, write_png_folder
from ae_jax.training import runs
from ae_jax.training.config_lib import model_label
from ae_jax.training.workdir import checkpoint_steps, read_run_config
# pylint: enable=unused-import


# ------------------------------------------------------------------------- codes

def save_codes(path: str, codes: Codes, overwrite: bool = False) -> int:
  """Writes `codes` to `path` (atomically); returns the file's size in bytes. An existing
  `path` is replaced only with `overwrite=True`."""
  check_output_path(path, overwrite, "codes file", overwrite_flag="overwrite=True")
  data = codes_to_bytes(codes)
  atomic_write(path, data)
  return len(data)


def _apply_batched(fn, x: np.ndarray, batch_size: int) -> np.ndarray:
  return np.concatenate([np.asarray(fn(x[i:i + batch_size]))
                         for i in range(0, len(x), batch_size)]) if len(x) else x


def run_quants(cfg: dict) -> tuple[str, ...]:
  """The quantizations of a run's codes, its default first: 'entropy' for a learned codec
  (range coded with its prior), 'index' for a VQ-VAE (its codes are codebook rows), else
  uint8, float16, float32."""
  if runs.has_prior(cfg):
    return (ENTROPY,)
  return (INDEX,) if runs.is_vq_run(cfg) else ("uint8", "float16", "float32")


def default_quant(workdir: str) -> str:
  """How a run's codes are stored unless told (`run_quants`' first)."""
  return run_quants(read_run_config(workdir))[0]


def encode(workdir: str, images_u8: np.ndarray, quant: str | None = None, *,
           step: int | None = None, names: Sequence[str] | None = None,
           batch_size: int = 1000) -> Codes:
  """Codes of uint8 images [N, H, W, C] by the run's encoder (only the encoder is restored),
  quantized as `quant` (one of ALL_QUANTS; by default the run's, as the CLI's: entropy for
  a learned codec, its integer codes range coded with its prior's tables and
  `Codes.estimated_bits` the model's own estimate per image; index for a VQ-VAE; else
  uint8). A hyperprior codec's run takes images of any sizes (an array, or a list of
  [H, W, C] arrays) and gives `HyperCodes` (format version 4: ae_jax/compression/hyper_codec.py)."""
  from ae_jax.models import compiled  # pylint: disable=import-outside-toplevel  (JAX)
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  if quant is not None and quant not in ALL_QUANTS:
    raise UserError(f"unknown quantization {quant!r}: choose one of {', '.join(ALL_QUANTS)}")
  run = runs.run_identity(workdir, step)
  cfg = read_run_config(workdir)
  quant = quant or run_quants(cfg)[0]
  if quant == INDEX and not runs.is_vq_run(cfg):
    raise UserError(f"--quant index stores codebook indices, and {workdir} is a "
                    f"{model_label(cfg)} model without a codebook: use --quant float32, "
                    "float16 or uint8, or a VQ-VAE run (configs/vqvae.py)")
  if quant == ENTROPY and not runs.has_prior(cfg):
    raise UserError(f"{workdir} is a {model_label(cfg)} model, without the learned prior "
                    "that entropy coding needs: use --quant uint8 (or train configs/codec.py)")
  if quant == ENTROPY and runs.is_hyperprior(cfg):
    return _hyper_encode(workdir, images_u8, run, cfg, names, batch_size)
  runs.check_images(images_u8, tuple(cfg["image_shape"]), f"the images for {workdir}")
  if len(images_u8) == 0:
    raise UserError("no images to encode: give at least one")
  _check_names(names, len(images_u8))
  encoder, variables = checkpoint.restore_encoder(workdir, run["step"])
  images = np.asarray(images_u8)
  # What every kind of codes says of itself besides its values and shapes.
  about = {"model": model_label(cfg), "image_shape": tuple(cfg["image_shape"]), "run": run,
           "names": list(names) if names is not None else None}
  if quant == ENTROPY:
    return _entropy_encode(encoder, variables, images, about, batch_size)
  if quant == INDEX:
    return _encode_indices(encoder, variables, images, about, batch_size)
  apply = compiled.apply()
  codes = _apply_batched(lambda x: apply(encoder, variables, x.astype(np.float32) / 255.0),
                         images, batch_size)
  code_shape = codes.shape[1:]
  values, offset, scale = quantize(codes.reshape(len(images), -1), quant)
  return Codes(values=values, quant=quant, latent_dim=int(np.prod(code_shape)),
               code_shape=tuple(code_shape), offset=offset, scale=scale, **about)


def _check_names(names: Sequence[str] | None, count: int) -> None:
  if names is not None and (len(names) != count or not all(isinstance(n, str) for n in names)):
    raise UserError(f"{len(names)} names for {count} images: give one name (a string) per "
                    "image, or none")


def _check_any_size(images, channels: int, what: str) -> list[np.ndarray]:
  """uint8 images [H, W, C] of any sizes (a list, or an array [N, H, W, C]), checked."""
  if isinstance(images, np.ndarray) and images.ndim == 4:
    images = list(images)
  if not isinstance(images, (list, tuple)) or not images:
    raise UserError("no images to encode: give at least one (an array [N, H, W, C] or a "
                    "list of [H, W, C] arrays)")
  for i, im in enumerate(images):
    im = np.asarray(im)
    if im.ndim != 3 or im.shape[-1] != channels or min(im.shape) < 1:
      raise UserError(f"image {i} of {what} has shape {im.shape}, not (H, W, {channels}): "
                      f"give {channels}-channel images")
    if im.dtype != np.uint8:
      raise UserError(f"image {i} of {what} is {im.dtype}, not uint8 pixels: give 8-bit "
                      "images")
  return [np.asarray(im) for im in images]


def _hyper_encode(workdir: str, images, run: dict, cfg: dict, names, batch_size: int):
  """A hyperprior run's codes (version 4): images of any size, each given back at it."""
  from ae_jax.compression import hyper_codec  # pylint: disable=import-outside-toplevel  (JAX)
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  images = _check_any_size(images, int(cfg["image_shape"][-1]), f"the images for {workdir}")
  _check_names(names, len(images))
  encoder, variables = checkpoint.restore_encoder(workdir, run["step"])
  about = {"model": model_label(cfg), "run": run,
           "names": list(names) if names is not None else None}
  return hyper_codec.encode(encoder, variables, images, about, batch_size)


def _entropy_encode(encoder, variables, images_u8, about: dict, batch_size) -> Codes:
  """round(y) of the codec's analysis transform, range coded with its prior's tables."""
  from ae_jax.compression import entropy_coding  # pylint: disable=import-outside-toplevel
  from ae_jax.models import codec, compiled  # pylint: disable=import-outside-toplevel

  apply = compiled.apply(reported=("losses", "rate"))  # by name: the analysis may report too
  outputs = [apply(encoder, variables, images_u8[i:i + batch_size].astype(np.float32) / 255.0)
             for i in range(0, len(images_u8), batch_size)]
  y = check_finite(np.concatenate([np.asarray(o[0]) for o in outputs]))
  estimated = np.concatenate([np.asarray(o[1]) for o in outputs])
  tables = codec_tables(encoder, variables)
  code_shape = tuple(y.shape[1:])
  channel_of = channels_of(code_shape, tables.channels)
  symbols, clipped = entropy_coding.clip(y.reshape(len(y), -1).astype(np.int64), channel_of,
                                         tables)
  return Codes(values=symbols, quant=ENTROPY, latent_dim=int(np.prod(code_shape)),
               code_shape=code_shape, tables=tables,
               streams=entropy_coding.encode(symbols, channel_of, tables),
               coder=entropy_coding.coder_version(), estimated_bits=estimated,
               clipped=clipped, **about)


def _encode_indices(encoder, variables, images_u8, about: dict, batch_size) -> Codes:
  """A VQ-VAE's codes as packed codebook indices, with its codebook (ae_jax/compression/codes.py)."""
  from ae_jax.models import compiled  # pylint: disable=import-outside-toplevel  (JAX)
  indices = compiled.apply("indices")
  idx = _apply_batched(lambda x: indices(encoder, variables, x.astype(np.float32) / 255.0),
                       images_u8, batch_size)
  codebook = np.asarray(encoder.apply(variables, method="get_codebook"), np.float32)
  code_shape = (*idx.shape[1:], codebook.shape[1])
  return Codes(values=pack_indices(idx.reshape(len(idx), -1), len(codebook)), quant=INDEX,
               latent_dim=int(np.prod(code_shape)), code_shape=code_shape,
               codebook=codebook, **about)


# Codes decode only with the checkpoint that made them: another step cannot stand in.
_CODES_NEED_IT = ("the codes were made by that checkpoint and decode only with it: encode "
                  "the images again from a good step")


def _for_codes(read):
  """read(the checkpoint module), a damaged checkpoint reported with the advice for codes."""
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel  (imports JAX)
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
  if (codes.run.get("config_hash") not in (runs.config_hash(cfg),
                                           runs.config_hash(cfg, runs.EARLIER_RESUMABLE))
      and not _same_checkpoint(codes, workdir)):
    raise UserError(f"{source} were {made_by} (config {codes.run.get('config_hash')}), not by "
                    f"{workdir} (config {runs.config_hash(cfg)}): decode with --workdir "
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


def decode(codes: Codes | HyperCodes, workdir: str, batch_size: int = 1000
           ) -> np.ndarray | list[np.ndarray]:
  """Images [N, H, W, C] in [0, 1] = sigmoid(decoder(codes)) (only the decoder is restored;
  for a hyperprior's codes the encoder's h_s too, and images of several sizes come back as
  a list of [H, W, C] arrays)."""
  from ae_jax.models import compiled  # pylint: disable=import-outside-toplevel  (JAX)
  check_compatible(codes, workdir)
  if isinstance(codes, HyperCodes):
    return _hyper_decode(codes, workdir)
  decoder, variables = _for_codes(lambda ckpt: ckpt.restore_decoder(workdir, codes.run["step"]))
  apply = compiled.apply(sigmoid=True)
  return _apply_batched(lambda z: apply(decoder, variables, z), codes.dequantized(), batch_size)


def _hyper_decode(codes: HyperCodes, workdir: str) -> np.ndarray | list[np.ndarray]:
  from ae_jax.compression import hyper_codec  # pylint: disable=import-outside-toplevel  (JAX)
  step = codes.run["step"]
  encoder, enc_vars = _for_codes(lambda ckpt: ckpt.restore_encoder(workdir, step))
  decoder, dec_vars = _for_codes(lambda ckpt: ckpt.restore_decoder(workdir, step))
  images = hyper_codec.decode(codes, encoder, enc_vars, decoder, dec_vars)
  same = len({im.shape for im in images}) == 1
  return np.stack(images) if same else images


def codec_tables(encoder: "nn.Module", variables) -> "entropy_coding.Tables":
  """The integer tables of a restored codec encoder (entropy_coding.build_tables)."""
  from ae_jax.compression import entropy_coding  # pylint: disable=import-outside-toplevel
  from ae_jax.models import codec  # pylint: disable=import-outside-toplevel  (JAX)
  pmf = encoder.apply(variables, -codec.TABLE_RADIUS, codec.TABLE_RADIUS, method="pmf")
  return entropy_coding.build_tables(np.asarray(pmf, np.float64), -codec.TABLE_RADIUS)
