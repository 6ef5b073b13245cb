"""The picture files: real PNGs written by matplotlib, read back with PIL."""
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
