"""What a code is good for: one table over trained runs, beside raw pixels and PCA at the
same code size.

    python -m ae_jax.code_table --workdir runs/vae --workdir runs/rae [--max_train 60000]

For each run, its deterministic codes (no 'sample' stream: a Gaussian encoder's mean) of
the training and test images, read from the run's IDX files (`idx_dir`, which hold the
labels, in the files' order), then:
  * linear probe: a multinomial logistic regression (numpy, full-batch gradient descent
    with momentum on standardized codes, L2 1e-4) trained on the frozen train-split codes,
    its accuracy on the test split;
  * k-NN: the test codes' 5 nearest train codes (Euclidean), majority vote;
  * PSNR: the test images reconstructed from their codes (dB, mean over images);
  * bytes/image: the run's codes as `python -m ae_jax.compress` stores them by default
    (entropy coded for a learned codec, codebook indices for a VQ-VAE, else uint8), on the
    first `--bytes_images` test images;
  * seconds to train: the sum of metrics.jsonl's epoch `seconds`.
Raw pixels (784 numbers) and PCA (fitted on the train split, once for each code size the
runs have below the pixels') give the same columns where they apply.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Sequence

import numpy as np

from ae_jax.core import cli
from ae_jax.core.errors import UserError, run_cli
from ae_jax.training import runs
from ae_jax.training.config_lib import model_label

K_NEIGHBOURS = 5


def read_labelled(idx_dir: str | None, needs: str = "the code table"
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{'train'|'test': (uint8 images [N, H, W, 1], labels [N])} from IDX files (`needs`:
  the tool that reads them, for the message when they are missing)."""
  from ae_jax.data import idx  # pylint: disable=import-outside-toplevel
  if not idx.has_idx_files(idx_dir):
    raise UserError(f"{needs} needs the dataset's IDX files with their labels, and "
                    f"{idx_dir!r} has none: pass --idx_dir (Debian's dataset-fashion-mnist "
                    "installs them in /usr/share/datasets/fashion-mnist)")
  out = {}
  for split, (_, labels) in idx.FILES.items():
    out[split] = (idx.load_images(idx_dir, split),
                  idx.read_idx(idx.find_idx_file(idx_dir, labels)).astype(np.int64))
  return out


def logistic_regression(x_NxD: np.ndarray, y_N: np.ndarray, classes: int, l2: float = 1e-4,
                        iterations: int = 500, lr: float = 0.5, momentum: float = 0.9):
  """(predict(x) -> labels): softmax regression by gradient descent on standardized x."""
  mean, std = x_NxD.mean(0), x_NxD.std(0) + 1e-6
  x = (x_NxD - mean) / std
  n, d = x.shape
  onehot = np.eye(classes)[y_N]
  w, b = np.zeros((d, classes)), np.zeros(classes)
  vw, vb = np.zeros_like(w), np.zeros_like(b)
  for _ in range(iterations):
    logits = x @ w + b
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    g = (p - onehot) / n
    vw = momentum * vw - lr * (x.T @ g + l2 * w)
    vb = momentum * vb - lr * g.sum(0)
    w, b = w + vw, b + vb
  return lambda z: (((z - mean) / std) @ w + b).argmax(1)


def probe_accuracy(train_x, train_y, test_x, test_y) -> float:
  predict = logistic_regression(np.asarray(train_x, np.float64), train_y,
                                int(max(train_y.max(), test_y.max())) + 1)
  return float((predict(np.asarray(test_x, np.float64)) == test_y).mean())


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = K_NEIGHBOURS) -> float:
  """Majority vote of the k nearest (ties: the smallest label)."""
  train_x = np.asarray(train_x, np.float32)
  sq = (train_x ** 2).sum(1)
  classes = int(max(train_y.max(), test_y.max())) + 1
  right = 0
  for start in range(0, len(test_x), 500):
    t = np.asarray(test_x[start:start + 500], np.float32)
    d = sq[None, :] - 2 * t @ train_x.T  # + |t|^2, the same for every train code
    nearest = np.argpartition(d, k, axis=1)[:, :k]
    votes = np.zeros((len(t), classes))
    np.add.at(votes, (np.arange(len(t))[:, None], train_y[nearest]), 1)
    right += int((votes.argmax(1) == test_y[start:start + 500]).sum())
  return right / len(test_x)


def pca(train_x: np.ndarray, k: int):
  """(encode, decode) of the first k principal components of train_x [N, D]."""
  mean = train_x.mean(0)
  _, _, vt = np.linalg.svd(train_x - mean, full_matrices=False)
  basis = vt[:k]
  return (lambda x: (x - mean) @ basis.T), (lambda c: c @ basis + mean)


def _psnr(restored: np.ndarray, clean: np.ndarray) -> float:
  mse = ((restored.reshape(len(clean), -1) - clean.reshape(len(clean), -1)) ** 2).mean(1)
  return float((10 * np.log10(1.0 / np.maximum(mse, 1e-10))).mean())


def _train_seconds(workdir: str) -> float | None:
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      return float(sum(json.loads(line).get("seconds", 0.0) for line in f if line.strip()))
  except (OSError, ValueError):
    return None


def run_row(workdir: str, data: dict, bytes_images: int = 1000) -> dict:
  """The table's row of a trained run."""
  import jax  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import compress  # pylint: disable=import-outside-toplevel
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  cfg = checkpoint.read_run_config(workdir)
  step = runs.run_identity(workdir)["step"]
  model, variables = checkpoint.restore_autoencoder(workdir, step)
  encode = jax.jit(lambda v, x: model.apply(v, x, method="encode"))
  decode = jax.jit(lambda v, z: model.apply(v, z, method="decode"))

  def codes(images):
    return np.concatenate([np.asarray(encode(variables, images[i:i + 1000] / 255.0))
                           for i in range(0, len(images), 1000)])
  (train_im, train_y), (test_im, test_y) = data["train"], data["test"]
  train_z, test_z = codes(train_im), codes(test_im)
  restored = np.concatenate([np.asarray(decode(variables, test_z[i:i + 1000]))
                             for i in range(0, len(test_z), 1000)])
  packed = compress.encode(workdir, test_im[:bytes_images])
  flat = lambda z: z.reshape(len(z), -1)
  return {"method": f"{os.path.basename(os.path.normpath(workdir))} "
                    f"({model_label(cfg)})",
          "code_size": int(flat(test_z).shape[1]),
          "probe": probe_accuracy(flat(train_z), train_y, flat(test_z), test_y),
          "knn": knn_accuracy(flat(train_z), train_y, flat(test_z), test_y),
          "psnr": _psnr(restored, test_im / 255.0),
          "bytes": f"{packed.bytes_per_image:.1f} ({packed.quant})",
          "seconds": _train_seconds(workdir)}


def baseline_rows(data: dict, code_sizes: Sequence[int]) -> list[dict]:
  """Raw pixels, and PCA with each of `code_sizes` components (the sizes below the
  pixels', each once, smallest first)."""
  (train_im, train_y), (test_im, test_y) = data["train"], data["test"]
  train_x = train_im.reshape(len(train_im), -1) / 255.0
  test_x = test_im.reshape(len(test_im), -1) / 255.0
  rows = [{"method": "raw pixels", "code_size": train_x.shape[1],
           "probe": probe_accuracy(train_x, train_y, test_x, test_y),
           "knn": knn_accuracy(train_x, train_y, test_x, test_y), "psnr": None,
           "bytes": None, "seconds": None}]
  for code_size in sorted({k for k in code_sizes if k < train_x.shape[1]}):
    encode, decode = pca(train_x, code_size)
    train_c, test_c = encode(train_x), encode(test_x)
    rows.append({"method": f"PCA {code_size}", "code_size": code_size,
                 "probe": probe_accuracy(train_c, train_y, test_c, test_y),
                 "knn": knn_accuracy(train_c, train_y, test_c, test_y),
                 "psnr": _psnr(np.clip(decode(test_c), 0, 1), test_x), "bytes": None,
                 "seconds": None})
  return rows


def table(rows: list[dict]) -> str:
  fmt = lambda v, f: "–" if v is None else format(v, f) if not isinstance(v, str) else v
  lines = ["| code | numbers | linear probe | 5-NN | PSNR (dB) | bytes/image | train s |",
           "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['method']} | {r['code_size']} | {fmt(r['probe'], '.4f')} | "
                 f"{fmt(r['knn'], '.4f')} | {fmt(r['psnr'], '.2f')} | {fmt(r['bytes'], '')} | "
                 f"{fmt(r['seconds'], '.1f')} |")
  return "\n".join(lines)


def build(workdirs: Sequence[str], idx_dir: str | None = None, max_train: int | None = None,
          max_test: int | None = None, baselines: bool = True,
          bytes_images: int = 1000) -> list[dict]:
  """The rows: each run's, then raw pixels and PCA at each of the runs' code sizes."""
  if not workdirs:
    raise UserError("give at least one --workdir (a trained run)")
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  cfg = checkpoint.read_run_config(workdirs[0])
  data = read_labelled(idx_dir or cfg.get("idx_dir"))
  data = {"train": tuple(a[:max_train] for a in data["train"]),
          "test": tuple(a[:max_test] for a in data["test"])}
  rows = [run_row(w, data, bytes_images) for w in workdirs]
  if baselines:
    rows += baseline_rows(data, [r["code_size"] for r in rows])
  return rows


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.code_table",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", default=[], help="a trained run (repeat)")
  parser.add_argument("--idx_dir", help="IDX files with labels (default: the first run's)")
  parser.add_argument("--max_train", type=cli.positive_int, help="first N train images")
  parser.add_argument("--max_test", type=cli.positive_int, help="first N test images")
  parser.add_argument("--bytes_images", type=cli.positive_int, default=1000,
                      help="test images whose codes are stored to count bytes (default 1000)")
  parser.add_argument("--no_baselines", action="store_true",
                      help="leave out raw pixels and PCA")
  args = parser.parse_args(argv)
  cli.quiet_logs()
  return run_cli(lambda: table(build(args.workdir, args.idx_dir, args.max_train,
                                     args.max_test, not args.no_baselines,
                                     args.bytes_images)))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
