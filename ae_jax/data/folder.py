"""A folder of images as a dataset: what it holds, checked, and how it splits (numpy and
Pillow only; folder_builder.py prepares it through tfds).

    DIR/train/...  DIR/test/...   the two splits, from these subfolders
    DIR/...                       otherwise one pool: its test split is the files whose name
                                  hashes below `test_fraction` (stable: sha256 of the path)

Inside a split (or the pool) the images lie directly, or in one subfolder per class (the
subfolder names, sorted, are the labels). PNG, JPEG and WebP files, grayscale or RGB, of
any sizes; one mode for the whole dataset. A split keeps its files' order: sorted by path
within the split (class subfolder, then file name). Files whose names start with '.' are
passed over; any other file that is not an image is refused by name.

A dataset is named `folder:DIR` (config.dataset, or a tool's --dataset). Its fingerprint
(the files' paths, sizes and modification times, and `test_fraction`) names the prepared
copy: a folder that changed is prepared again, one that did not is read back.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np

from ae_jax.core.errors import UserError

PREFIX = "folder:"
# The version of the tfds dataset folder_builder.py prepares (read without tfds).
VERSION = "1.0.0"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
SPLITS = ("train", "test")
# Pillow modes taken, and the channels of each (1, bilevel: read as 8-bit gray; P, a
# palette: read as RGB).
CHANNELS = {"L": 1, "1": 1, "RGB": 3, "P": 3}
MODE_NAMES = {1: "grayscale (L)", 3: "RGB"}


def is_folder(dataset: str) -> bool:
  return isinstance(dataset, str) and dataset.startswith(PREFIX)


def path_of(dataset: str) -> str:
  """The folder a `folder:DIR` dataset names, absolute, with ~ expanded."""
  return os.path.abspath(os.path.expanduser(dataset[len(PREFIX):]))


def normalized(dataset: str) -> str:
  """`dataset` as a run records it: a folder's by its absolute path, others unchanged."""
  return PREFIX + path_of(dataset) if is_folder(dataset) else dataset


@dataclasses.dataclass(frozen=True)
class Listing:
  """The files of a folder dataset, by split (paths relative to `root`, in order)."""
  root: str
  files: dict[str, tuple[str, ...]]
  labels: dict[str, tuple[int, ...]] | None  # None: no class subfolders
  class_names: tuple[str, ...]
  test_fraction: float
  fingerprint: str  # of the paths, sizes, modification times and test_fraction

  @property
  def config_name(self) -> str:
    """The name of its tfds builder config: the folder's name and the fingerprint."""
    base = "".join(c if c.isalnum() else "_" for c in os.path.basename(self.root).lower())
    return f"{base.strip('_')[:40] or 'images'}_{self.fingerprint}"


def in_test_split(relpath: str, test_fraction: float) -> bool:
  """Whether a pooled file goes to the test split: the sha256 of its path (relative, '/'
  separated) as a number in [0, 1) below `test_fraction`. The same on every machine and
  Python (unlike hash()), and a file keeps its split when others are added or removed."""
  digest = hashlib.sha256(relpath.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def _entries(folder: str) -> list[os.DirEntry]:
  try:
    return sorted((e for e in os.scandir(folder) if not e.name.startswith(".")),
                  key=lambda e: e.name)
  except OSError as e:
    raise UserError(f"cannot read the folder {folder} ({e.strerror}): give a readable "
                    "folder of images") from None


def _is_image_name(name: str) -> bool:
  return name.lower().endswith(EXTENSIONS)


def _not_an_image(path: str) -> UserError:
  return UserError(f"{path} is not an image (PNG, JPEG or WebP by its name): move it out of "
                   "the dataset's folder, or convert it")


def _split_files(folder: str, rel: str) -> tuple[list[tuple[str, str | None]], list[str]]:
  """[(relative path, class or None)] of the images in `folder` (directly, or in class
  subfolders), and the class names."""
  entries = _entries(folder)
  dirs = [e for e in entries if e.is_dir()]
  files = [e for e in entries if not e.is_dir()]
  if dirs and files:
    raise UserError(f"{files[0].path} lies beside the class folders of {folder} "
                    f"({dirs[0].name}/, ...): move it into one of them, or out")
  out = []
  for d in dirs:
    for e in _entries(d.path):
      if e.is_dir():
        raise UserError(f"{e.path} is a folder inside the class folder {d.path}: a class "
                        "folder holds images only (flatten it or move it out)")
      if not _is_image_name(e.name):
        raise _not_an_image(e.path)
      out.append((f"{rel}{d.name}/{e.name}", d.name))
  for e in files:
    if not _is_image_name(e.name):
      raise _not_an_image(e.path)
    out.append((f"{rel}{e.name}", None))
  return out, [d.name for d in dirs]


def listing(root: str, test_fraction: float = 0.1) -> Listing:
  """The files of the dataset in folder `root` and their splits, without opening them
  (a `UserError` names the file or folder that does not fit the layout)."""
  if not os.path.isdir(root):
    what = "is a file" if os.path.exists(root) else "does not exist"
    raise UserError(f"the images folder {root} {what}: give a folder of images "
                    "(config.dataset=folder:DIR)")
  names = {e.name for e in _entries(root) if e.is_dir()}
  if set(SPLITS) <= names:  # train/ and test/
    found = {s: _split_files(os.path.join(root, s), f"{s}/") for s in SPLITS}
    others = sorted(n for n in {e.name for e in _entries(root)} - set(SPLITS))
    if others:
      raise UserError(f"{os.path.join(root, others[0])} lies beside train/ and test/ in "
                      f"{root}: move it into one of them, or out")
    pairs = {s: found[s][0] for s in SPLITS}
    classes = sorted(set(found["train"][1]) | set(found["test"][1]))
  else:
    pool, classes = _split_files(root, "")
    if not pool:
      raise UserError(f"the images folder {root} holds no images: put PNG, JPEG or WebP "
                      "files in it (or in train/ and test/, or in class subfolders)")
    pairs = {"train": [], "test": []}
    for rel, cls in pool:
      pairs["test" if in_test_split(rel, test_fraction) else "train"].append((rel, cls))
  for split in SPLITS:
    if not pairs[split]:
      where = (os.path.join(root, split) if set(SPLITS) <= names else root)
      how = ("" if set(SPLITS) <= names else
             f" (a held-out fraction {test_fraction:g} of {len(pool)} images)")
      raise UserError(f"the {split} split of {root} has no images{how}: put PNG, JPEG or "
                      f"WebP files in {where}"
                      + ("" if set(SPLITS) <= names or not pool else
                         ", or set --config.test_fraction so both splits get some"))
  files = {s: tuple(rel for rel, _ in pairs[s]) for s in SPLITS}
  has_classes = any(cls is not None for s in SPLITS for _, cls in pairs[s])
  labels = ({s: tuple(classes.index(cls) for _, cls in pairs[s]) for s in SPLITS}
            if has_classes else None)
  h = hashlib.sha256(f"{VERSION} {test_fraction!r}\n".encode())
  for s in SPLITS:
    for rel in files[s]:
      st = os.stat(os.path.join(root, rel))
      h.update(f"{s} {rel} {st.st_size} {st.st_mtime_ns}\n".encode("utf-8"))
  return Listing(root, files, labels, tuple(classes) if has_classes else (),
                 test_fraction, h.hexdigest()[:16])


# ------------------------------------------------------------------------ the images

def _open(path: str):
  from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
  try:
    return Image.open(path)
  except (OSError, UnidentifiedImageError, ValueError, SyntaxError,
          Image.DecompressionBombError) as e:
    raise UserError(f"cannot read the image {path} ({type(e).__name__}): it is damaged or "
                    "not an image: replace it, or move it out of the dataset's folder") from None


def channels_of(path: str, mode: str) -> int:
  """1 or 3: the channels an image of Pillow `mode` gives; other modes are refused."""
  if mode in CHANNELS:
    return CHANNELS[mode]
  if mode in ("LA", "RGBA", "PA"):
    fix = "drop the alpha channel, e.g. Image.convert('RGB') (or 'L')"
  elif mode.startswith("I") or mode == "F":
    fix = "scale it to 8 bits, e.g. (pixels // 257) for 16-bit, and save it as mode L"
  else:
    fix = "convert it to RGB or grayscale, e.g. Image.convert('RGB')"
  raise UserError(f"the image {path} has mode {mode}: the dataset takes 8-bit grayscale "
                  f"(L) or RGB images: {fix}")


def inspect(files: Listing) -> dict:
  """What the images' headers say, checked: {'channels', 'shape' ((H, W, C) when every
  image has one size, else None), 'smallest': {split: [h, w, path]} (the image whose
  shorter side is shortest)}. A file that is no image, a mode other than grayscale or RGB
  (alpha, 16-bit, CMYK) and two modes in one dataset are each one `UserError` naming the
  file (and the first of the other mode)."""
  first = None  # (path, channels) of the first image
  sizes = set()
  smallest, pixels = {}, {split: 0 for split in SPLITS}
  for split in SPLITS:
    for rel in files.files[split]:
      path = os.path.join(files.root, rel)
      with _open(path) as im:
        size, mode = im.size, im.mode
      c = channels_of(path, mode)
      if first is None:
        first = (path, c)
      elif c != first[1]:
        raise UserError(f"the image {path} is {MODE_NAMES[c]} but {first[0]} is "
                        f"{MODE_NAMES[first[1]]}: a dataset has one mode: convert them "
                        f"all to one, e.g. Image.convert('{'L' if first[1] == 1 else 'RGB'}')")
      w, h = size
      sizes.add((h, w))
      pixels[split] += h * w * c
      best = smallest.get(split)
      if best is None or min(h, w) < min(best[0], best[1]):
        smallest[split] = [h, w, path]
  channels = first[1]
  shape = (*next(iter(sizes)), channels) if len(sizes) == 1 else None
  return {"channels": channels, "shape": shape, "smallest": smallest, "pixels": pixels}


def read_image(path: str, channels: int) -> np.ndarray:
  """The uint8 pixels [H, W, channels] of one image, decoded whole (a damaged file is a
  `UserError` naming it)."""
  im = _open(path)
  try:
    with im:
      if channels_of(path, im.mode) != channels:
        raise UserError(f"the image {path} has mode {im.mode}, not the dataset's "
                        f"{MODE_NAMES[channels]}: convert it")
      if im.mode in ("1", "P"):
        im = im.convert("L" if channels == 1 else "RGB")
      pixels = np.asarray(im, dtype=np.uint8)
  except UserError:
    raise
  except (OSError, ValueError, SyntaxError) as e:  # a truncated or damaged body
    raise UserError(f"cannot read the image {path} ({type(e).__name__}: {e}): it is "
                    "damaged: replace it, or move it out of the dataset's folder") from None
  return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


# ------------------------------------------------------------------------ numpy arrays

def _as_images(images, what: str) -> list[np.ndarray]:
  """uint8 images [H, W, 1 or 3] from an array [N, H, W(, C)] or a list of [H, W(, C)]."""
  out = []
  for i, im in enumerate(images):
    im = np.asarray(im)
    if im.ndim == 2:
      im = im[..., None]
    if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] not in (1, 3) or 0 in im.shape:
      raise UserError(f"{what}[{i}] is {im.dtype} of shape {im.shape}: give uint8 images "
                      "[H, W], [H, W, 1] or [H, W, 3] (e.g. (x * 255).round().astype(np.uint8))")
    out.append(im)
  if not out:
    raise UserError(f"{what} holds no images: give at least one")
  return out


def from_arrays(train, test, folder: str | None = None, data_dir: str | None = None) -> str:
  """A dataset of numpy images, for config.dataset and every tool: `folder:DIR`.

      config.dataset = data.from_arrays(x_train, x_test)   # uint8 [N, H, W(, C)]

  `train` and `test`: uint8 arrays [N, H, W], [N, H, W, C] (C 1 or 3), or lists of
  [H, W(, C)] images of several sizes. They are written as PNG files named by index
  (train/000000.png, ...; image i stays image i) into `folder`, by default
  `<tfds data_dir>/ae_jax_arrays/<hash of the pixels>`, where the same arrays later find
  their files (and their prepared dataset) again. Written under a temporary name and
  renamed: a folder there is whole."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  splits = {"train": _as_images(train, "train"), "test": _as_images(test, "test")}
  if folder is None:
    h = hashlib.sha256()
    for split, images in splits.items():
      for im in images:
        h.update(f"{split} {im.shape}".encode())
        h.update(np.ascontiguousarray(im).tobytes())
    from ae_jax.data import pipeline  # pylint: disable=import-outside-toplevel  (imports JAX)
    folder = os.path.join(pipeline.data_root(data_dir), "ae_jax_arrays", h.hexdigest()[:16])
  folder = os.path.abspath(os.path.expanduser(folder))
  if not os.path.isdir(folder):
    tmp = f"{folder}.{os.getpid()}.tmp"
    try:
      for split, images in splits.items():
        os.makedirs(os.path.join(tmp, split))
        digits = max(6, len(str(len(images) - 1)))
        for i, im in enumerate(images):
          Image.fromarray(im[..., 0] if im.shape[2] == 1 else im).save(
              os.path.join(tmp, split, f"{i:0{digits}d}.png"))
      os.rename(tmp, folder)
    except OSError as e:
      import shutil  # pylint: disable=import-outside-toplevel
      shutil.rmtree(tmp, ignore_errors=True)
      raise UserError(f"cannot write the arrays' images to {folder} ({e.strerror or e}): "
                      "give a writable folder= (or data_dir=) with free space") from None
  return PREFIX + folder
