"""Matplotlib pictures of a run: image grids (originals / noisy / restored) and loss curves."""
from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display is needed or wanted


def _pyplot():
  """pyplot, imported on first use: it costs ~0.4 s, and training starts before any plot."""
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def save_grid(path: str, rows: Sequence[tuple[str, np.ndarray]]) -> None:
  """One row per (title, images [N, H, W, C] in [0, 1]); grey for one channel."""
  plt = _pyplot()
  n = len(rows[0][1])
  fig, axes = plt.subplots(len(rows), n, figsize=(1.2 * n, 1.3 * len(rows)), squeeze=False)
  for r, (title, images) in enumerate(rows):
    for c in range(n):
      ax = axes[r][c]
      image = np.clip(np.asarray(images[c], np.float32), 0, 1)
      if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
      else:
        ax.imshow(image)
      ax.set_xticks([])
      ax.set_yticks([])
    axes[r][0].set_ylabel(title, fontsize=9)
  fig.tight_layout(pad=0.2)
  fig.savefig(path, dpi=80)
  plt.close(fig)


def save_loss_curve(path: str, rows: Sequence[dict], loss_name: str) -> None:
  """Train and validation loss per epoch from metrics.jsonl rows."""
  plt = _pyplot()
  epochs = [r["epoch"] for r in rows]
  fig, ax = plt.subplots(figsize=(5, 3.2))
  ax.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
  ax.plot(epochs, [r["val_loss"] for r in rows], "s-", label="validation")
  ax.set_xlabel("epoch")
  ax.set_ylabel(f"{loss_name} loss")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
