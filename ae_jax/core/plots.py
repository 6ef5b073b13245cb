"""Matplotlib pictures of a run: image grids (originals / noisy / restored) and loss curves.

Figures are made with `matplotlib.figure.Figure` (no pyplot: no global state, nothing to
close). Each picture is written whole or not at all (`files.atomic_path`): a full disk or
a stop signal leaves the one before.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np

from ae_jax.core.files import atomic_path

matplotlib.use("Agg")  # files only; no display is needed or wanted


def _figure(**kwargs):
  """A new Figure; matplotlib.figure is imported on first use (~0.25 s), after training starts."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  return Figure(**kwargs)


def _mosaic(rows: Sequence[tuple[str, np.ndarray]], pad: int) -> np.ndarray:
  """The rows' images side by side in one array, `pad` white pixels between them."""
  h, w, channels = np.asarray(rows[0][1][0]).shape
  n = max(len(images) for _, images in rows)
  mosaic = np.ones((len(rows) * (h + pad) - pad, n * (w + pad) - pad, channels), np.float32)
  for r, (_, images) in enumerate(rows):
    for c, image in enumerate(images):
      mosaic[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = np.clip(
          np.asarray(image, np.float32), 0, 1)
  return mosaic[..., 0] if channels == 1 else mosaic


def save_grid(path: str, rows: Sequence[tuple[str, np.ndarray]]) -> None:
  """One row per (title, images [N, H, W, C] in [0, 1]); grey for one channel.

  Drawn as one image with the titles as row labels: one Axes instead of one per picture
  (timed inside dense training runs while this was written: 250-650 ms per grid with 30
  Axes, 40-60 ms this way).
  """
  mosaic = _mosaic(rows, pad=2)
  h = np.asarray(rows[0][1][0]).shape[0]
  n = max(len(images) for _, images in rows)
  fig = _figure(figsize=(1.1 * n, 1.1 * len(rows)))
  ax = fig.add_axes((0, 0, 1, 1))
  ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
  ax.set_xticks([])
  ax.set_yticks([r * (h + 2) + h / 2 for r in range(len(rows))], [t for t, _ in rows],
                fontsize=9)
  ax.tick_params(length=0)
  for spine in ax.spines.values():
    spine.set_visible(False)
  with atomic_path(path) as tmp:  # a full disk or a stop leaves the picture before
    fig.savefig(tmp, dpi=80, bbox_inches="tight", pad_inches=0.05)


def save_loss_curve(path: str, rows: Sequence[dict], loss_name: str) -> None:
  """Train and validation loss per epoch from metrics.jsonl rows."""
  epochs = [r["epoch"] for r in rows]
  fig = _figure(figsize=(5, 3.2))
  ax = fig.subplots()
  ax.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
  ax.plot(epochs, [r["val_loss"] for r in rows], "s-", label="validation")
  ax.set_xlabel("epoch")
  ax.set_ylabel(f"{loss_name} loss")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  with atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=100)


def save_image_grid(path: str, images: np.ndarray, columns: int, pad: int = 2) -> None:
  """Images [N, H, W, C] in [0, 1] as a PNG of rows of `columns`, `pad` white pixels
  between them, one pixel per pixel (no axes): rows past N are left white."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  images = np.asarray(images, np.float32)
  rows = [("", images[i:i + columns]) for i in range(0, len(images), columns)]
  mosaic = _mosaic(rows, pad)
  with atomic_path(path) as tmp:
    Image.fromarray(np.round(mosaic * 255).astype(np.uint8)).save(tmp)
