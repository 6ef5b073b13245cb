"""Matplotlib pictures: image grids (originals / noisy / restored), loss curves, and what
every plot a tool writes shares so that it reads at a glance with many runs on it: a short
title, text no smaller than MIN_FONT points, point labels that never overlap.

Figures are made with `matplotlib.figure.Figure` (no pyplot: no global state, nothing to
close). Each picture is written whole or not at all (`files.atomic_path`): a full disk or
a stop signal leaves the one before.
"""
from __future__ import annotations

import math
import textwrap
from typing import Sequence

import matplotlib
import numpy as np

from ae_jax.core.files import atomic_path

matplotlib.use("Agg")  # files only; no display is needed or wanted

MIN_FONT = 8  # points: the smallest text of any plot (legends, point labels, ticks)
TITLE_FONT = 11


def figure(**kwargs):
  """A new Figure on an Agg canvas (it can be drawn to measure its texts before saving);
  matplotlib.figure is imported on first use (~0.25 s), after training starts."""
  # pylint: disable=import-outside-toplevel
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(**kwargs)
  FigureCanvasAgg(fig)
  return fig


def short_title(text: str, width: int = 100, lines: int = 2) -> str:
  """`text` wrapped at `width` characters, at most `lines` lines (the rest cut to '…'): a
  title that stays inside its figure. What it leaves out belongs in the report."""
  wrapped = textwrap.wrap(text, width)
  if len(wrapped) > lines:
    wrapped = wrapped[:lines - 1] + [textwrap.shorten(" ".join(wrapped[lines - 1:]), width,
                                                      placeholder=" …")]
  return "\n".join(wrapped)


def colours(n: int) -> list:
  """n distinct colours: tab10's, or tab20's beyond ten (tab10 repeats after ten)."""
  from matplotlib import colormaps  # pylint: disable=import-outside-toplevel
  cmap = colormaps["tab10" if n <= 10 else "tab20"]
  return [cmap(i % cmap.N) for i in range(n)]


def legend_layout(entries: int, max_columns: int = 3) -> tuple[int, int]:
  """(columns, rows) of a legend of `entries` below the plots."""
  columns = max(1, min(max_columns, entries))
  return columns, math.ceil(entries / columns)


# Where a point label may go, in points from its point (then its horizontal alignment),
# in the order tried: above left, below right, above right, below left.
LABEL_PLACES = ((-4, 5, "right"), (4, -12, "left"), (4, 5, "left"), (-4, -12, "right"))


def point_label(ax, text: str, xy, colour, first_place: int = 0):
  """An annotation of the point `xy` for `place_labels`, at LABEL_PLACES[first_place] until
  placed; MIN_FONT, on a faint white box so that it reads over the lines."""
  dx, dy, ha = LABEL_PLACES[first_place]
  return ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha,
                     fontsize=MIN_FONT, color=colour, zorder=5,
                     bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                           "alpha": 0.7})


def place_labels(fig, labels: Sequence) -> None:
  """Moves each point label (`point_label`) to the first of LABEL_PLACES, from its own first
  one on, where it overlaps no label placed before it and stays inside its axes, and removes
  it where there is none: the first labels given win, so give the most useful first.
  Measures the final layout (draws the figure once); labels take no part in the layout."""
  for label in labels:
    label.set_in_layout(False)
  fig.canvas.draw()
  renderer = fig.canvas.get_renderer()
  kept = []
  for label in labels:
    frame = label.axes.get_window_extent(renderer)
    start = next((i for i, (dx, dy, _) in enumerate(LABEL_PLACES)
                  if (dx, dy) == tuple(label.xyann)), 0)  # where point_label put it
    for dx, dy, ha in LABEL_PLACES[start:] + LABEL_PLACES[:start]:
      label.xyann = (dx, dy)
      label.set_horizontalalignment(ha)
      box = label.get_window_extent(renderer)
      if (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
          and box.y1 <= frame.y1 and not any(box.overlaps(other) for other in kept)):
        kept.append(box)
        break
    else:
      label.remove()


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
  fig = figure(figsize=(1.1 * n, 1.1 * len(rows)))
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
  fig = loss_figure(rows, loss_name)
  with atomic_path(path) as tmp:  # a full disk or a stop leaves the picture before
    fig.savefig(tmp, dpi=100)


def loss_figure(rows: Sequence[dict], loss_name: str):
  """`save_loss_curve`'s figure."""
  epochs = [r["epoch"] for r in rows]
  fig = figure(figsize=(5, 3.2))
  ax = fig.subplots()
  ax.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
  ax.plot(epochs, [r["val_loss"] for r in rows], "s-", label="validation")
  ax.set_xlabel("epoch")
  ax.set_ylabel(f"{loss_name} loss")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return fig


def save_image_grid(path: str, images: np.ndarray, columns: int, pad: int = 2) -> None:
  """Images [N, H, W, C] in [0, 1] as a PNG of rows of `columns`, `pad` white pixels
  between them, one pixel per pixel (no axes): rows past N are left white."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  images = np.asarray(images, np.float32)
  rows = [("", images[i:i + columns]) for i in range(0, len(images), columns)]
  mosaic = _mosaic(rows, pad)
  with atomic_path(path) as tmp:
    Image.fromarray(np.round(mosaic * 255).astype(np.uint8)).save(tmp)
