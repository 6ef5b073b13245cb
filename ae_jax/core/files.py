"""The tools' files on disk: PNG folders read and written, output paths checked before any
work is done, and atomic writes (a reader never sees half a file)."""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ae_jax.core.errors import DiskError, UserError, disk_errno


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
  check_output_path(path, overwrite, "--out", folder=True)
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
    if disk_errno(e):
      raise DiskError("the decoded images", path, disk_errno(e), "--out") from None
    raise UserError(f"cannot write the images to {path} ({e.strerror or e}): choose a "
                    "writable --out with free space") from None
  ours = {name + ".png" for name in names}
  return sum(1 for n in os.listdir(path) if n.lower().endswith(".png") and n not in ours)


def check_output_path(path: str, overwrite: bool, flag: str, folder: bool = False,
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


def atomic_write(path: str, data: bytes) -> None:
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    if disk_errno(e):
      raise DiskError(os.path.basename(path), os.path.dirname(os.path.abspath(path)),
                      disk_errno(e), "--out") from None
    raise UserError(f"cannot write {path} ({e.strerror}): choose a writable path") from None

