"""SSIM, PSNR, MSE and BCE of image batches against reference and hand-computed values."""
import math

import numpy as np
import pytest

from ae_jax.core import metrics, quality


def _pair():
  """Two deterministic 16x16 test patterns and a brightness-shifted, wavy copy of the first."""
  i, j = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
  a = ((3 * i + 5 * j) % 17) / 16.0
  b = ((i * j) % 11) / 10.0
  c = np.clip(0.8 * a + 0.1 + 0.05 * np.cos(i + j), 0, 1)
  return a, b, c


def test_ssim_matches_scikit_image():
  # Reference values computed offline with scikit-image 0.26.0:
  #   skimage.metrics.structural_similarity(x, y, data_range=1.0, gaussian_weights=True,
  #                                         sigma=1.5, use_sample_covariance=False)
  # (Wang et al.'s SSIM, the definition dm-pix and tf.image.ssim implement).
  a, b, c = _pair()
  got = quality.ssim(np.stack([a, a])[..., None], np.stack([b, c])[..., None])
  np.testing.assert_allclose(got, [-0.004850521865026609, 0.9656302754684519], atol=2e-6)


def test_ssim_identity_and_constant_images_by_hand():
  a, _, _ = _pair()
  x = a[None, ..., None]
  np.testing.assert_allclose(quality.ssim(x, x), [1.0], atol=1e-6)
  # Flat images: no variance, so SSIM is the luminance term (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
  # with C1 = (0.01 * 1)^2.
  flat1, flat2 = np.full((1, 16, 16, 1), 0.5), np.full((1, 16, 16, 1), 0.25)
  c1 = 0.01**2
  expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)
  np.testing.assert_allclose(quality.ssim(flat1, flat2), [expected], rtol=1e-5)


def test_uint8_and_unit_float_images_give_the_same_values():
  rng = np.random.default_rng(0)
  x, y = (rng.integers(0, 256, (3, 28, 28, 1), dtype=np.uint8) for _ in range(2))
  # atol: the SSIM of two noise images is ~0.002, where float32 rounding of x/255 alone moves
  # it by ~3e-8 (a wrong uint8 scaling would move every value by far more).
  for fn in (quality.ssim, quality.psnr, quality.mse, quality.bce):
    np.testing.assert_allclose(fn(x, y), fn(x / 255.0, y / 255.0), rtol=1e-5, atol=1e-6)


def test_psnr_mse_bce_by_hand():
  black, white = np.zeros((1, 2, 2, 1), np.uint8), np.full((1, 2, 2, 1), 255, np.uint8)
  np.testing.assert_allclose(quality.mse(black, white), [1.0])
  np.testing.assert_allclose(quality.psnr(black, white), [0.0], atol=1e-6)
  half = np.full((1, 2, 2, 1), 0.5)
  np.testing.assert_allclose(quality.psnr(half, black), [10 * math.log10(4)], rtol=1e-6)
  # BCE of probability p against target t, per pixel, as Keras computes it.
  p, t = np.array([0.2, 0.9, 0.5, 0.7]), np.array([0.0, 1.0, 0.25, 0.7])
  expected = np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
  np.testing.assert_allclose(quality.bce(p.reshape(1, 2, 2, 1), t.reshape(1, 2, 2, 1)),
                             [expected], rtol=1e-5)
  # Same value as the training loss from the matching logits.
  logits = np.log(p / (1 - p)).reshape(1, 2, 2, 1).astype(np.float32)
  np.testing.assert_allclose(quality.bce(p.reshape(1, 2, 2, 1), t.reshape(1, 2, 2, 1)),
                             metrics.bce_from_logits(logits, t.reshape(1, 2, 2, 1).astype(
                                 np.float32)), rtol=1e-5)
  # Saturated pixels stay finite (clipped like Keras).
  assert np.isfinite(quality.bce(white, black)).all()


def test_report_averages_over_batches():
  rng = np.random.default_rng(1)
  x, y = (rng.integers(0, 256, (7, 28, 28, 1), dtype=np.uint8) for _ in range(2))
  whole, chunked = quality.report(x, y, batch_size=7), quality.report(x, y, batch_size=3)
  for k in whole:
    np.testing.assert_allclose(chunked[k], whole[k], rtol=1e-5)
  np.testing.assert_allclose(whole["ssim"], float(np.mean(quality.ssim(x, y))), rtol=1e-5)


def test_to_uint8_rounds_and_clips():
  np.testing.assert_array_equal(quality.to_uint8([-0.1, 0.0, 0.5 / 255, 1.6 / 255, 1.2]),
                                [0, 0, 0, 2, 255])


def test_other_integer_types_and_unequal_batches_are_refused():
  """uint16 or int64 pixels have no known range, and a 1-image target would broadcast over
  the batch: both gave numbers that meant nothing (PSNR -10 dB), now a ValueError."""
  x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1))
  for fn in (quality.ssim, quality.psnr, quality.mse, quality.bce, quality.report):
    for bad in (x.astype(np.int64), x.astype(np.uint16)):
      with pytest.raises(ValueError, match="give uint8 pixels"):
        fn(bad, bad)
    with pytest.raises(ValueError, match="differ in shape"):
      fn(x[:4].astype(np.uint8), x[:1].astype(np.uint8))
  with pytest.raises(ValueError, match="differ in shape"):  # extra originals, not ignored
    quality.report(x[:2].astype(np.uint8), x.astype(np.uint8), batch_size=2)
