"""The tools' files on disk: PNG folders read and written, output paths checked before any
work is done, and every output written whole or not at all: a file under a temporary
name renamed when complete (`atomic_path`), a report's files staged and moved into place
as a set (`output_set`)."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ae_jax.core.errors import DiskError, UserError, disk_errno, signals_held, writing


def read_png_folder(path: str, image_shape: tuple[int, ...], max_images: int | None = None,
                    any_size: bool = False) -> tuple[np.ndarray | list[np.ndarray], list[str]]:
  """uint8 images [N, H, W, C] of every *.png in folder `path` (sorted by name; the first
  `max_images` of them if given), or of the one file `path`, and their names without the
  extension. With `any_size`, images of any H x W (image_shape's channels still checked),
  as a list of [H, W, C] arrays (a model that takes any size: a hyperprior codec's)."""
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
    if any_size:
      w, h = size
    elif size != (w, h):
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
  return (images if any_size else np.stack(images)), stems


def write_png_folder(path: str, images_u8: np.ndarray, names: Sequence[str] | None,
                     overwrite: bool = False) -> int:
  """Writes one PNG per image into folder `path`: a new (or empty) folder, or with
  `overwrite` an existing one, where files of the same names are replaced and the others
  kept. The PNGs appear together or not at all (`output_set`). Returns how many other
  .png files the folder holds (earlier outputs, say)."""
  check_output_path(path, overwrite, "--out", folder=True)
  names = list(names) if names is not None else [f"{i:05d}" for i in range(len(images_u8))]
  if len(set(names)) != len(names) or any(os.sep in n or n in ("", ".", "..") for n in names):
    raise UserError("the codes file's image names are not distinct file names: "
                    "encode the images again")
  files = [name + ".png" for name in names]
  try:
    with output_set(path, files, overwrite=True, what="the decoded images") as staging:
      for file, image in zip(files, images_u8):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            os.path.join(staging, file))
  except OSError as e:  # not the disk's refusal (output_set names those): permissions, say
    raise UserError(f"cannot write the images to {path} ({e.strerror or e}): choose a "
                    "writable --out with free space") from None
  ours = set(files)
  return sum(1 for n in os.listdir(path) if n.lower().endswith(".png") and n not in ours)


def check_output_path(path: str, overwrite: bool, flag: str, folder: bool = False,
                       overwrite_flag: str = "--overwrite") -> None:
  """Refuses an output `path` (a file, or with `folder` a folder of outputs) that exists,
  unless `overwrite` (an empty folder holds nothing to lose: it is taken), or whose folder
  is missing or not writable."""
  if os.path.exists(path) and not (folder and os.path.isdir(path) and not _visible(path)):
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
  written, or that holds any of the files `names` (unless `overwrite`, or unless they
  are what an attempt cut short while moving its files in left: `output_set` replaces
  them)."""
  if os.path.exists(folder) and not os.path.isdir(folder):
    raise UserError(f"{flag} {folder} is a file: choose a folder")
  clash = [n for n in names if os.path.exists(os.path.join(folder, n))]
  if clash and not overwrite and not _stale(folder, PARTIAL):
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


def atomic_write(path: str, data: bytes, flag: str = "--out") -> None:
  """`data` to the file `path`, whole or not at all (`atomic_path`); a refusal of the disk
  is a `DiskError` naming `flag`, any other a `UserError`."""
  try:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
      f.write(data)
  except OSError as e:
    if disk_errno(e):
      raise DiskError(os.path.basename(path), os.path.dirname(os.path.abspath(path)),
                      disk_errno(e), flag) from None
    raise UserError(f"cannot write {path} ({e.strerror}): choose a writable path") from None


# ---------------------------------------------------------------- whole or not at all

PARTIAL = ".partial-"  # in the names of files and folders still being written


def _visible(folder: str) -> list[str]:
  """The entries of `folder` a user sees (not dot files such as a staging folder)."""
  return [n for n in os.listdir(folder) if not n.startswith(".")]


def _remove(path: str) -> None:
  try:
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      os.remove(path)
  except OSError:
    pass


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """A temporary name beside `path` (same folder, same extension, so that PIL and
  matplotlib still tell the format) to write the file under: renamed to `path` when the
  block ends, removed when it raises (a full disk, a stop signal). A reader, and a
  rerun, finds the whole new file or the one before, never a truncated one."""
  folder, name = os.path.split(os.path.abspath(path))
  stem, ext = os.path.splitext(name)
  tmp = os.path.join(folder, f".{stem}{PARTIAL}{os.getpid()}{ext}")
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    _remove(tmp)
    raise


def _pid_of(name: str) -> int | None:
  digits = name.rsplit(PARTIAL, 1)[-1].split(".")[0]
  return int(digits) if digits.isdigit() else None


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except OSError:  # another user's process
    return True
  return True


def _stale(folder: str, prefix: str) -> list[str]:
  """The staging folders of `prefix` in `folder` whose process is gone (killed with
  SIGKILL, or the machine stopped): what they hold was never an output, and one inside
  an output folder says that an attempt was cut short while moving its files in."""
  try:
    entries = os.listdir(folder)
  except OSError:
    return []
  stale = []
  for name in entries:
    pid = _pid_of(name) if name.startswith(prefix) else None
    if pid is not None and pid != os.getpid() and not _alive(pid):
      stale.append(os.path.join(folder, name))
  return stale


def _made_folders(folder: str) -> list[str]:
  """Makes `folder`'s missing parents (not `folder`); returns those it made, deepest
  first (the order to remove them in)."""
  missing, parent = [], os.path.dirname(os.path.abspath(folder))
  while not os.path.exists(parent):
    missing.append(parent)
    parent = os.path.dirname(parent)
  for path in reversed(missing):
    os.mkdir(path)
  return missing


def _public_mode(path: str) -> None:
  """mkdtemp makes a folder private (0700); a folder of outputs gets the umask's mode."""
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(path, 0o777 & ~umask)


@contextlib.contextmanager
def output_set(folder: str, names: Sequence[str], overwrite: bool = False,
               flag: str = "--out", what: str | None = None) -> Iterator[str]:
  """A staging folder to write the files of one output into, moved into `folder` as a set
  when the block ends without error: with `overwrite`, the earlier files of `names` go
  first, so that the folder never mixes two runs' files, and nothing else there is
  touched. A new `folder` is the staging folder renamed (it appears whole or not at all:
  no empty folder is left by a failure); into an existing one each file is renamed, with
  stop signals held meanwhile (`signals_held`), and only a SIGKILL or a crash can cut it
  short: its staging folder, left behind, then lets the rerun replace the files without
  --overwrite (`check_output_folder`). When the block raises (a full disk, a stop
  signal), the staging folder is removed and `folder` is as it was.

  A refusal of the disk, here or inside, is one `DiskError` line: 'cannot write WHAT
  (default: the names) to FOLDER'. Staging folders of killed processes are removed."""
  check_output_folder(folder, names, overwrite, flag)
  folder = os.path.abspath(folder)
  parent, base = os.path.split(folder)
  with writing(what or ", ".join(names), folder, flag):
    made = [] if os.path.isdir(folder) else _made_folders(folder)
    new = not os.path.isdir(folder)
    inside, prefix = (parent, f".{base}{PARTIAL}") if new else (folder, PARTIAL)
    for path in _stale(inside, prefix):
      _remove(path)
    staging = None
    try:
      staging = tempfile.mkdtemp(dir=inside, prefix=prefix + f"{os.getpid()}.")
      yield staging
      with signals_held():
        if new:
          _public_mode(staging)
          try:
            os.rename(staging, folder)
            staging = None
          except OSError as e:  # made meanwhile (by another run, say): move the files in
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
              raise
        if staging is not None:
          _move_files(staging, folder, names)
          os.rmdir(staging)
          staging = None
    except BaseException:
      if staging is not None:
        _remove(staging)
      for path in made:  # deepest first; only if still empty
        try:
          os.rmdir(path)
        except OSError:
          break
      raise


def _move_files(staging: str, folder: str, names: Sequence[str]) -> None:
  for name in names:
    target = os.path.join(folder, name)
    if os.path.lexists(target) and not os.path.isdir(target):
      os.remove(target)
  for name in os.listdir(staging):
    os.replace(os.path.join(staging, name), os.path.join(folder, name))
