"""The small Fashion-MNIST classifier whose penultimate layer is the feature space of the
project's sample-quality metric (ae_jax/evaluation/frechet.py): trained here, shipped as a
folder, read back by `load`.

    python -m ae_jax.classifier --out runs/classifier [--epochs 5] [--idx_dir DIR]

A CNN for 28x28x1 images: two 3x3 convolutions of stride 2 (32 and 64 channels, ReLU), a
dense layer of 128 units (ReLU: the features), the 10 logits. Stride-2 convolutions, not
convolutions then pooling: a quarter of the multiply-adds at this size, for a classifier
that only has to tell the classes apart well enough to give a meaningful feature space
(trained in minutes on a 2-core CPU). Adam 1e-3, batch 128, a fixed seed, trained on the
train split of the IDX files (`--idx_dir`, the labels in the files' order), its accuracy
measured on their test split. The folder holds `classifier.npz` (the parameters, by their
'/'-joined paths) and `classifier.json` (test accuracy, epochs, seed, feature size, the
data, and the floor of the metric: the distance of the train split's first 10,000 images
to the test split's), written together or not at all.

Its features are those of this network and these data: a distance in them is comparable
between runs scored with the same classifier folder, not with Inception-based FIDs.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
import zipfile
from typing import Sequence

import numpy as np

from ae_jax.core import cli, files
from ae_jax.core.errors import UserError, run_cli

FEATURES = 128
CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
ARCHITECTURE = "conv32s2-conv64s2-dense128-logits10"  # in the JSON: a changed net is refused
PARAMS_FILE, INFO_FILE = "classifier.npz", "classifier.json"
FLOOR_IMAGES = 10_000


@functools.cache
def _model():
  """The Linen module, built on first use (keeps `import` of this file free of Flax)."""
  import flax.linen as nn  # pylint: disable=import-outside-toplevel

  class Classifier(nn.Module):
    """images [N, 28, 28, 1] in [0, 1] -> (logits [N, 10], features [N, 128])."""

    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.Conv(32, (3, 3), strides=2, name="conv1")(x))
      x = nn.relu(nn.Conv(64, (3, 3), strides=2, name="conv2")(x))
      features = nn.relu(nn.Dense(FEATURES, name="features")(x.reshape(len(x), -1)))
      return nn.Dense(CLASSES, name="logits")(features), features
  return Classifier()


def init_params(seed: int = 0) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  model = _model()
  init = jax.jit(lambda key: model.init(key, np.zeros((1, *IMAGE_SHAPE), np.float32)))
  return init(jax.random.key(seed))["params"]


def _as_float(images) -> np.ndarray:
  """uint8 pixels / 255, or float images in [0, 1] as they are: float32 [N, 28, 28, 1]."""
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if tuple(images.shape[1:]) != IMAGE_SHAPE:
    raise UserError(f"the Fashion-MNIST classifier takes 28x28 grayscale images, not "
                    f"{tuple(images.shape[1:])} (H, W, C): score a run of such images")
  return (images / 255.0 if images.dtype == np.uint8 else images).astype(np.float32)


def train(images_u8: np.ndarray, labels: np.ndarray, epochs: int = 5, seed: int = 0,
          batch_size: int = 128, learning_rate: float = 1e-3) -> tuple[dict, list[float]]:
  """(params, the mean training loss of each epoch). Each epoch visits the images in
  `data.epoch_permutation(seed, epoch)` order; a last partial batch is dropped."""
  import jax  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  model, optimizer = _model(), optax.adam(learning_rate)
  params = init_params(seed)
  opt_state = jax.jit(optimizer.init)(params)

  @jax.jit
  def step(params, opt_state, x_u8, y):
    def loss_fn(p):
      logits, _ = model.apply({"params": p}, x_u8.astype(np.float32) / 255.0)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  steps = len(images_u8) // batch_size
  if steps == 0:
    raise UserError(f"{len(images_u8)} training images make no batch of {batch_size}: "
                    "give the full train split")
  history = []
  for epoch in range(epochs):
    order = pipeline.epoch_permutation(seed, epoch, len(images_u8))
    losses = []
    for i in range(steps):
      batch = order[i * batch_size:(i + 1) * batch_size]
      params, opt_state, loss = step(params, opt_state, images_u8[batch], labels[batch])
      losses.append(loss)
    history.append(float(np.mean(jax.device_get(losses))))
  return params, history


@functools.cache
def _jitted_apply():
  import jax  # pylint: disable=import-outside-toplevel
  return jax.jit(lambda p, x: _model().apply({"params": p}, x))


def apply(params: dict, images, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
  """(logits [N, 10], features [N, 128]) of images (uint8, or floats in [0, 1])."""
  import jax  # pylint: disable=import-outside-toplevel
  x, run = _as_float(images), _jitted_apply()
  outs = [jax.device_get(run(params, x[i:i + batch])) for i in range(0, len(x), batch)]
  return (np.concatenate([o[0] for o in outs]) if outs else np.zeros((0, CLASSES)),
          np.concatenate([o[1] for o in outs]) if outs else np.zeros((0, FEATURES)))


def features(params: dict, images) -> np.ndarray:
  """The penultimate layer [N, 128] of images (uint8, or floats in [0, 1])."""
  return apply(params, images)[1]


def accuracy(params: dict, images, labels: np.ndarray) -> float:
  return float((apply(params, images)[0].argmax(1) == labels).mean())


# --------------------------------------------------------------------- the folder

def save(folder: str, params: dict, info: dict, overwrite: bool = False) -> None:
  """The parameters and `info` into `folder`, both files or neither (`files.output_set`)."""
  from flax import traverse_util  # pylint: disable=import-outside-toplevel
  flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}
  with files.output_set(folder, [PARAMS_FILE, INFO_FILE], overwrite,
                        what="the classifier") as staging:
    np.savez(os.path.join(staging, PARAMS_FILE), **flat)
    with open(os.path.join(staging, INFO_FILE), "w") as f:
      json.dump(info, f, indent=2)
      f.write("\n")


def load(folder: str) -> tuple[dict, dict]:
  """(params, info) of a classifier folder `save` wrote; a missing, damaged or foreign one
  is a `UserError` that says how to make one."""
  from flax import traverse_util  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  fix = f"train one with python -m ae_jax.classifier --out {folder}"
  if not os.path.isdir(folder):
    raise UserError(f"--classifier {folder} is not a folder: {fix}")
  try:
    with open(os.path.join(folder, INFO_FILE)) as f:
      info = json.load(f)
    with np.load(os.path.join(folder, PARAMS_FILE)) as saved:
      flat = {tuple(k.split("/")): saved[k] for k in saved.files}
  except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
    raise UserError(f"--classifier {folder} cannot be read ({type(e).__name__}): {fix}") from None
  want = traverse_util.flatten_dict(jax.eval_shape(init_params))
  shapes = {k: v.shape for k, v in flat.items()}
  numbers = ("test_accuracy", "fd_classifier_train_vs_test")
  if (not isinstance(info, dict) or info.get("architecture") != ARCHITECTURE
      or not all(isinstance(info.get(k), (int, float)) for k in numbers)
      or shapes != {k: v.shape for k, v in want.items()}):
    raise UserError(f"--classifier {folder} is not this version's classifier "
                    f"({ARCHITECTURE}): {fix}")
  return traverse_util.unflatten_dict(flat), info


# ------------------------------------------------------------------- the command

def build(out: str, idx_dir: str | None = None, epochs: int = 5, seed: int = 0,
          overwrite: bool = False) -> str:
  """Trains, measures and saves the classifier; returns the lines to print."""
  from ae_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  from ae_jax.evaluation import code_table, frechet  # pylint: disable=import-outside-toplevel
  files.check_output_folder(out, [PARAMS_FILE, INFO_FILE], overwrite)
  idx_dir = idx_dir or pipeline.DEFAULT_IDX_DIR
  data = code_table.read_labelled(idx_dir, needs="the classifier")
  (train_x, train_y), (test_x, test_y) = data["train"], data["test"]
  start = time.perf_counter()
  params, history = train(train_x, train_y, epochs, seed)
  seconds = time.perf_counter() - start
  acc = accuracy(params, test_x, test_y)
  floor = frechet.frechet_distance(features(params, train_x[:FLOOR_IMAGES]),
                                   features(params, test_x))
  info = {"architecture": ARCHITECTURE, "feature_size": FEATURES, "test_accuracy": acc,
          "epochs": epochs, "seed": seed, "batch_size": 128, "learning_rate": 1e-3,
          "train_loss_per_epoch": history, "train_seconds": round(seconds, 1),
          "idx_dir": os.path.abspath(idx_dir), "train_images": len(train_x),
          "test_images": len(test_x),
          "fd_classifier_train_vs_test": floor,
          "fd_floor_note": f"the first {min(FLOOR_IMAGES, len(train_x))} train images "
                           f"against the {len(test_x)} test images"}
  save(out, params, info, overwrite)
  return (f"test accuracy {acc:.4f} ({len(test_x)} test images, {epochs} epochs, "
          f"{seconds:.0f} s)\n{frechet.METRIC} of train images to test images "
          f"(the floor): {floor:.3f}\nwrote the classifier to {out}")


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.classifier",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="folder to write the classifier into")
  parser.add_argument("--idx_dir", help="Fashion-MNIST's four IDX files with labels "
                      "(default /usr/share/datasets/fashion-mnist)")
  parser.add_argument("--epochs", type=cli.positive_int, default=5,
                      help="passes over the train split (default 5)")
  parser.add_argument("--seed", type=int, default=0, help="of the init and order (default 0)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace the classifier files in an existing --out")
  args = parser.parse_args(argv)
  cli.quiet_logs()
  return run_cli(lambda: build(args.out, args.idx_dir, args.epochs, args.seed,
                               args.overwrite))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
