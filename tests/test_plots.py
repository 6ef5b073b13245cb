"""The picture files: real PNGs written by matplotlib, read back with PIL, and every plot a
tool writes measured for readability with ten runs on it."""
import os

import numpy as np
from PIL import Image

from ae_jax.core import plots


def test_grid_puts_each_row_of_images_in_its_own_band(tmp_path):
  black, white = np.zeros((4, 28, 28, 1)), np.ones((4, 28, 28, 1))
  path = tmp_path / "grid.png"
  plots.save_grid(str(path), [("black", black), ("white", white), ("black again", black)])
  grey = np.asarray(Image.open(path).convert("L"), np.float32)
  h, w = grey.shape
  assert w > h > 200  # four columns (and the titles), three rows of ~85-pixel pictures
  # The right three quarters hold pictures only (the titles are on the left): the middle
  # band is the white row, the top and bottom bands the black ones.
  pictures = grey[:, w // 4:]
  third = h // 3
  top, middle, bottom = (pictures[i * third + 10:(i + 1) * third - 10].mean() for i in range(3))
  assert top < 100 and bottom < 100 and middle > 200


def test_grid_of_colour_images_keeps_the_colours(tmp_path):
  red = np.zeros((3, 8, 8, 3))
  red[..., 0] = 1.0
  path = tmp_path / "red.png"
  plots.save_grid(str(path), [("red", red)])
  rgb = np.asarray(Image.open(path).convert("RGB"), np.float32)
  centre = rgb[rgb.shape[0] // 2, rgb.shape[1] // 2]
  assert centre[0] > 200 and centre[1] < 60 and centre[2] < 60


def test_loss_curve_is_a_picture(tmp_path):
  rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e} for e in (1, 2, 3)]
  plots.save_loss_curve(str(tmp_path / "loss.png"), rows, "bce")
  assert Image.open(tmp_path / "loss.png").size[0] > 300


# ------------------------------------------------------------ readable with many runs

def readability_problems(fig) -> list[str]:
  """What makes a figure hard to read, measured on its drawn layout: text smaller than
  plots.MIN_FONT, text outside the figure, a figure legend over a plot, point labels that
  overlap each other or leave their plot."""
  from matplotlib.text import Annotation, Text  # pylint: disable=import-outside-toplevel
  fig.canvas.draw()
  renderer = fig.canvas.get_renderer()
  inside = lambda box, frame: (frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1
                               and frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1)
  problems = []
  ticks = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
           for t in axis.get_ticklabels(which="both")}
  texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
  for text in texts:
    if text.get_fontsize() < plots.MIN_FONT:
      problems.append(f"{text.get_text()!r} is {text.get_fontsize()} pt")
    # Tick labels of ticks outside the view are kept but not drawn: axes are checked whole.
    if id(text) not in ticks and not inside(text.get_window_extent(renderer), fig.bbox):
      problems.append(f"{text.get_text()[:40]!r} runs off the figure")
  for i, ax in enumerate(fig.axes):
    if not inside(ax.get_tightbbox(renderer), fig.bbox):
      problems.append(f"plot {i} (its tick labels) runs off the figure")
    problems += [f"the legend covers plot {i}" for legend in fig.legends
                 if legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))]
  labels = [t for t in texts if isinstance(t, Annotation)]
  boxes = [t.get_window_extent(renderer) for t in labels]
  for i, (label, box) in enumerate(zip(labels, boxes)):
    if not inside(box, label.axes.get_window_extent(renderer)):
      problems.append(f"point label {label.get_text()!r} leaves its plot")
    problems += [f"point labels {label.get_text()!r} and {other.get_text()!r} overlap"
                 for other, other_box in zip(labels[i + 1:], boxes[i + 1:])
                 if box.overlaps(other_box)]
  return problems


def _ten_runs_rows() -> list[dict]:
  """rate_distortion rows of ten runs (five models, two code sizes each, three
  quantizations: fifteen curves) beside JPEG, WebP, AVIF and PNG."""
  rows = []
  for m, model in enumerate(("dense", "conv", "convnet", "mlp", "sparse+dense")):
    for k in (16, 64):
      for quant, size in (("float32", 4), ("float16", 2), ("uint8", 1)):
        psnr = 15 + m * 0.4 + (2 if k == 64 else 0) - (0.01 if quant == "uint8" else 0)
        rows.append({"method": f"autoencoder {quant}, {model}",
                     "setting": f"{model} K={k} (runs/zoo/{model}_k{k})",
                     "bytes_per_image": float(k * size), "psnr": psnr, "ssim": psnr / 30,
                     "count": "payload"})
  for method, count, extra in (("JPEG file", "file", 330), ("JPEG, scan only", "payload", 0),
                               ("JPEG, tables shared", "tables shared", 45),
                               ("WebP file", "file", 20), ("WebP, VP8 payload", "payload", 0),
                               ("AVIF file", "file", 270), ("AVIF, mdat payload", "payload", 0)):
    for q, (size, psnr) in enumerate(((40, 18), (80, 22), (200, 28), (500, 40))):
      rows.append({"method": method, "setting": f"quality {q}", "count": count,
                   "bytes_per_image": float(size + extra), "psnr": psnr, "ssim": psnr / 45})
  rows.append({"method": "PNG", "setting": "lossless", "bytes_per_image": 508.0,
               "psnr": float("inf"), "ssim": 1.0, "count": "file"})
  return rows


def test_a_rate_distortion_plot_of_ten_runs_reads_at_a_glance(tmp_path):
  """docs/compression/learned_codec_rd.png had a title of workdirs running off the image,
  λ labels on top of each other and a 7-point legend."""
  from ae_jax.compression import rate_distortion  # pylint: disable=import-outside-toplevel
  rows = _ten_runs_rows()
  workdirs = ", ".join(f"runs/zoo/{m}_k{k}" for m in ("dense", "conv", "convnet", "mlp",
                                                      "sparse+dense") for k in (16, 64))
  fig = rate_distortion.rd_figure(rows, f"fashion_mnist test, 10000 images: {workdirs}", 784)
  assert readability_problems(fig) == []
  title = fig.get_suptitle()
  assert title.count("\n") <= 1 and title.endswith("…")  # shortened, not wrapped forever
  labels = [t.get_text() for ax in fig.axes for t in ax.texts]
  assert {"K=16", "K=64"} <= set(labels)  # each curve's ends, by their setting's name
  legend = fig.legends[0]
  assert len(legend.get_texts()) == 23 and legend.get_texts()[0].get_fontsize() >= 9
  rate_distortion.plot(str(tmp_path / "rd.png"), rows, "a title", 784)
  assert Image.open(tmp_path / "rd.png").size[0] >= 1200


def test_point_labels_move_aside_or_give_way_rather_than_overlap():
  from ae_jax.compression import rate_distortion  # pylint: disable=import-outside-toplevel
  # Ten λ sweeps whose curves nearly coincide: twenty ends in two small spots.
  rows = [{"method": f"learned codec {i}", "setting": f"λ={0.001 * (j + 1):g}",
           "bytes_per_image": 30.0 + 0.05 * i + j, "psnr": 22.0 + 0.005 * i + 0.1 * j,
           "ssim": 0.78, "count": "payload"} for i in range(10) for j in range(6)]
  fig = rate_distortion.rd_figure(rows, "ten λ sweeps", 784)
  assert readability_problems(fig) == []
  assert 2 <= len(fig.axes[0].texts) < 20  # some placed, the rest gave way


def test_the_latent_map_of_ten_classes_reads_at_a_glance():
  from ae_jax.evaluation import latent  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 500)
  xy = rng.normal(size=(500, 2)) + labels[:, None]
  names = [f"class name {i}" for i in range(10)]
  fig = latent.scatter_figure(xy, labels, names, np.array([0.31, 0.12]),
                              "codes of 2000 eval images (sparse+dense, code (32,)), first two "
                              "principal components, runs/some/long/workdir/name/here")
  assert readability_problems(fig) == []
  assert len(fig.legends[0].get_texts()) == 10


def test_the_loss_curve_reads_at_a_glance():
  rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e} for e in range(1, 31)]
  assert readability_problems(plots.loss_figure(rows, "bernoulli")) == []


def test_the_committed_learned_codec_plot_is_redrawn_readable_from_its_table(tmp_path):
  """docs/compression/learned_codec_rd.png: scripts/replot_rd.py draws it from the committed
  table of its run (15 runs, CompressAI's rows, the classic codecs)."""
  import runpy  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import rate_distortion  # pylint: disable=import-outside-toplevel
  from conftest import REPO  # pylint: disable=import-outside-toplevel
  script = runpy.run_path(os.path.join(REPO, "scripts", "replot_rd.py"))
  rows, source = script["read_rows"](
      os.path.join(REPO, "benchmarks", "results", "20261202-xeon-codec_rd.md"))
  assert len(rows) == 90 and source.count("checkpoint step") == 15
  assert readability_problems(rate_distortion.rd_figure(rows, source, 784)) == []
  assert script["main"]([os.path.join(REPO, "benchmarks", "results",
                                      "20261202-xeon-codec_rd.md"), str(tmp_path / "rd.png")]) == 0
  assert Image.open(tmp_path / "rd.png").size == Image.open(
      os.path.join(REPO, "docs", "compression", "learned_codec_rd.png")).size
