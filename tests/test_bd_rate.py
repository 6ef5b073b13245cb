"""BD-rate on curves whose answer is known exactly, and the curves it refuses."""
import math

import numpy as np
import pytest

from ae_jax.compression import bd_rate

# A JPEG-like curve: (bytes/image, PSNR dB), not evenly spaced, not a straight line.
ANCHOR = [(39.2, 18.3), (52.8, 19.9), (77.9, 21.8), (117.1, 24.1), (196.1, 28.4), (412.5, 39.2)]


def scaled(curve, factor):
  return [(r * factor, p) for r, p in curve]


@pytest.mark.parametrize("method", bd_rate.METHODS)
@pytest.mark.parametrize("factor, percent", [(0.5, -50.0), (2.0, 100.0), (1.0, 0.0),
                                             (0.8, -20.0)])
def test_constant_rate_factor_gives_its_percentage(method, factor, percent):
  result = bd_rate.bd_rate(ANCHOR, scaled(ANCHOR, factor), method=method)
  assert result.percent == pytest.approx(percent, abs=1e-9)
  assert (result.lo, result.hi) == (18.3, 39.2)


@pytest.mark.parametrize("method", bd_rate.METHODS)
def test_log_linear_curves_of_different_slopes(method):
  """log rate = a + b * PSNR on both curves (cubic fits and pchip reproduce lines): the
  mean log-rate difference over [lo, hi] is (b_t - b_a) * (lo + hi) / 2 + (a_t - a_a)."""
  psnr = np.array([20.0, 22.0, 25.0, 27.0, 30.0])
  anchor = list(zip(np.exp(1.0 + 0.12 * psnr), psnr))
  psnr_t = np.array([21.0, 23.0, 26.0, 28.0, 31.0])  # shifted: overlap 21..30 dB
  test = list(zip(np.exp(0.5 + 0.13 * psnr_t), psnr_t))
  result = bd_rate.bd_rate(anchor, test, method=method)
  assert (result.lo, result.hi) == (21.0, 30.0)
  expected = math.expm1((0.13 - 0.12) * (21 + 30) / 2 + (0.5 - 1.0)) * 100
  assert result.percent == pytest.approx(expected, abs=1e-9)
  ranged = bd_rate.bd_rate(anchor, test, method=method, psnr_range=(21.0, 25.0))
  assert (ranged.lo, ranged.hi) == (21.0, 25.0)
  assert ranged.percent == pytest.approx(math.expm1(0.01 * 23 - 0.5) * 100, abs=1e-9)


def test_point_order_and_a_lossless_point_do_not_matter():
  shuffled = [ANCHOR[i] for i in (3, 0, 5, 1, 4, 2)] + [(508.1, math.inf)]
  assert bd_rate.bd_rate(ANCHOR, scaled(shuffled, 0.5)).percent == pytest.approx(-50.0)


def test_range_is_narrowed_to_what_both_curves_cover():
  result = bd_rate.bd_rate(ANCHOR, scaled(ANCHOR, 0.5), psnr_range=(10.0, 25.0))
  assert (result.lo, result.hi) == (18.3, 25.0)


def test_pchip_stays_between_the_points_where_a_cubic_fit_swings():
  """A curve with a knee (the autoencoder's: flat above ~21 dB): the two interpolations
  disagree; pchip's answer stays within the range of the pointwise rate ratios."""
  knee = [(8, 16.2), (16, 17.3), (32, 18.7), (64, 20.3), (128, 21.85), (512, 22.2)]
  anchor = [(r * 1.5, p) for r, p in knee]
  anchor[-1] = (2000, 22.2)
  pchip = bd_rate.bd_rate(anchor, knee, method="pchip").percent
  cubic = bd_rate.bd_rate(anchor, knee, method="cubic").percent
  assert -75 < pchip < -33.3 and abs(pchip - cubic) > 1


@pytest.mark.parametrize("anchor, test, kwargs, message", [
    (ANCHOR[:3], ANCHOR, {}, "the anchor curve has 3 points with a finite PSNR: BD-rate needs "
                             "at least 4"),
    (ANCHOR, ANCHOR[:2] + [(600, math.inf)], {}, "the test curve has 2 points"),
    (ANCHOR, [(r, p + 30) for r, p in ANCHOR], {}, "the curves share no PSNR range"),
    (ANCHOR, ANCHOR, {"psnr_range": (40, 45)}, "lies outside 40-45 dB"),
    (ANCHOR, ANCHOR[:4] + [(300, 24.1)], {}, "two points of the same PSNR 24.100 dB"),
    (ANCHOR, [(0, 18.0)] + ANCHOR, {}, "rate <= 0"),
])
def test_curves_it_cannot_compare_are_refused(anchor, test, kwargs, message):
  with pytest.raises(bd_rate.CurveError, match=message):
    bd_rate.bd_rate(anchor, test, **kwargs)


def test_bad_arguments_are_refused():
  with pytest.raises(ValueError, match="method 'akima'"):
    bd_rate.bd_rate(ANCHOR, ANCHOR, method="akima")
  with pytest.raises(ValueError, match="low < high"):
    bd_rate.bd_rate(ANCHOR, ANCHOR, psnr_range=(25, 21))
