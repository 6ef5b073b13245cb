"""Prepares the photographs dataset of docs/compression.md (issue #29): a folder dataset
(README "Your own images") whose train split and test split come from two disjoint
sources that install offline from the package registries.

  train/  the twelve nature photographs of Debian's `mate-backgrounds` (GPL-2+; authors in
          its /usr/share/doc/mate-backgrounds/copyright), 1280x1024 to 2560x1920 JPEGs,
          each downsampled 2x (Lanczos), as the field does with large photographs (it
          removes most of the JPEG artefacts the codec would otherwise learn), then cut
          into TILE x TILE tiles (PNG, <photo>_<row>_<column>.png): as CompressAI trains
          on patches, so an epoch is many batches (training takes random crops of them,
          config.crop_size);
  test/   scikit-image's bundled RGB photographs, as shipped (astronaut, chelsea, coffee,
          rocket, motorcycle_left, motorcycle_right, hubble_deep_field: 300x451 to
          1000x872; licences in skimage/data/README.txt and scikit-image's docs) -- a
          Kodak-like evaluation set.

    sudo apt-get install mate-backgrounds      # the training photographs
    pip install scikit-image                   # (or --skimage_data DIR: its data folder)
    python scripts/photographs.py --out ~/data/photographs
    python launch.py --config configs/hyperprior_photo.py:0.0067 \
        --config.dataset=folder:~/data/photographs --workdir runs/photo/0.0067

The folder is written whole or not at all (a temporary folder, then renamed); an existing
--out is left as it is.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import shutil
import sys
import tempfile

from PIL import Image

MATE_NATURE = "/usr/share/backgrounds/mate/nature"
TEST_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
               "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg")
DOWNSAMPLE = 2
TILE = 160


def skimage_data_dir() -> str | None:
  """scikit-image's bundled data folder, found without importing the package."""
  spec = importlib.util.find_spec("skimage")
  if spec is None or not spec.submodule_search_locations:
    return None
  return os.path.join(list(spec.submodule_search_locations)[0], "data")


def fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="the dataset folder to create")
  parser.add_argument("--mate_dir", default=MATE_NATURE, help="mate-backgrounds' nature folder")
  parser.add_argument("--skimage_data", default=None,
                      help="scikit-image's data folder (default: the installed package's)")
  args = parser.parse_args()
  out = os.path.abspath(os.path.expanduser(args.out))
  if os.path.exists(out):
    fail(f"{out} exists: give a new --out (nothing there is changed)")
  train = sorted(glob.glob(os.path.join(args.mate_dir, "*.jpg")))
  if not train:
    fail(f"no photographs in {args.mate_dir}: sudo apt-get install mate-backgrounds")
  data = args.skimage_data or skimage_data_dir()
  if data is None:
    fail("scikit-image is not installed: pip install scikit-image, or give --skimage_data")
  missing = [n for n in TEST_PHOTOS if not os.path.isfile(os.path.join(data, n))]
  if missing:
    fail(f"{data} lacks {', '.join(missing)}: give scikit-image's data folder")
  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".photographs-", dir=parent)
  try:
    for split in ("train", "test"):
      os.makedirs(os.path.join(staging, split))
    for path in train:
      image = Image.open(path).convert("RGB")
      w, h = image.size
      image = image.resize((w // DOWNSAMPLE, h // DOWNSAMPLE), Image.Resampling.LANCZOS)
      stem = os.path.splitext(os.path.basename(path))[0]
      for r in range(image.height // TILE):
        for c in range(image.width // TILE):
          tile = image.crop((c * TILE, r * TILE, (c + 1) * TILE, (r + 1) * TILE))
          tile.save(os.path.join(staging, "train", f"{stem}_{r:02d}_{c:02d}.png"))
    for name in TEST_PHOTOS:
      image = Image.open(os.path.join(data, name)).convert("RGB")
      image.save(os.path.join(staging, "test", os.path.splitext(name)[0] + ".png"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide it from other users
    os.rename(staging, out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  tiles = len(os.listdir(os.path.join(out, "train")))
  print(f"wrote {tiles} training tiles of {len(train)} photographs and {len(TEST_PHOTOS)} test "
        f"photographs to {out}")


if __name__ == "__main__":
  main()
