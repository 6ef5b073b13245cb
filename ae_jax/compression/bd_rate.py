"""Bjøntegaard delta rate (BD-rate): how many percent more (or, negative, fewer) bytes one
codec needs than another for the same PSNR, averaged over a PSNR range.

The standard method (G. Bjøntegaard, VCEG-M33, 2001): on each rate-distortion curve, log
rate as a function of PSNR is interpolated; both are integrated over the PSNR range the two
curves share (optionally narrowed to a given range, such as 21-25 dB); the mean difference
of log rates, exponentiated, is the rate ratio, and BD-rate = (ratio - 1) * 100 %.

Two interpolations:
- `pchip` (the default): piecewise cubic Hermite interpolation through the points
  (scipy's `PchipInterpolator`, monotone between points). The JCT-VC and JVET common test
  conditions' Excel sheets use it, as does the `bjontegaard` package (FAU-LMS) that learned
  compression papers quote; the original cubic fit can swing outside the points.
- `cubic`: the original least-squares cubic polynomial of log rate in PSNR (VCEG-M33; the
  form of many older scripts).
Both need at least 4 points per curve and give the exact answer for curves whose rates
differ by a constant factor (halved rates: -50 %).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

METHODS = ("pchip", "cubic")
MIN_POINTS = 4


class CurveError(ValueError):
  """Two curves whose BD-rate cannot be computed: too few points, repeated PSNR values, no
  shared PSNR range."""


@dataclasses.dataclass(frozen=True)
class BDRate:
  """The BD-rate of a test curve against an anchor: `percent` (negative: the test curve
  needs fewer bytes), over PSNR `lo`..`hi` dB."""
  percent: float
  lo: float
  hi: float


def _curve(points: Sequence[tuple[float, float]], name: str) -> tuple[np.ndarray, np.ndarray]:
  """(PSNR ascending, log rate) of (rate, PSNR) points; infinite PSNR (lossless) dropped."""
  pts = [(float(r), float(p)) for r, p in points if np.isfinite(p)]
  if len(pts) < MIN_POINTS:
    raise CurveError(f"{name} has {len(pts)} points with a finite PSNR: BD-rate needs at "
                     f"least {MIN_POINTS}")
  rate, psnr = np.array(pts).T
  if not (rate > 0).all():
    raise CurveError(f"{name} has a rate <= 0: rates must be positive")
  order = np.argsort(psnr)
  psnr, log_rate = psnr[order], np.log(rate[order])
  same = psnr[1:][np.diff(psnr) <= 0]
  if same.size:
    raise CurveError(f"{name} has two points of the same PSNR {same[0]:.3f} dB: drop one")
  return psnr, log_rate


def _integral(psnr: np.ndarray, log_rate: np.ndarray, lo: float, hi: float,
              method: str) -> float:
  if method == "pchip":
    from scipy import interpolate  # pylint: disable=import-outside-toplevel
    return float(interpolate.PchipInterpolator(psnr, log_rate).integrate(lo, hi))
  poly = np.polynomial.Polynomial.fit(psnr, log_rate, 3).convert()
  integral = poly.integ()
  return float(integral(hi) - integral(lo))


def bd_rate(anchor: Sequence[tuple[float, float]], test: Sequence[tuple[float, float]], *,
            method: str = "pchip",
            psnr_range: tuple[float, float] | None = None) -> BDRate:
  """BD-rate of `test` against `anchor`, each a sequence of (rate, PSNR dB) points (any rate
  unit, e.g. bytes/image; any order), over the PSNR range both cover, narrowed to
  `psnr_range` if given. Raises `CurveError` when it cannot be computed."""
  if method not in METHODS:
    raise ValueError(f"method {method!r}: it must be one of {METHODS}")
  psnr_a, log_a = _curve(anchor, "the anchor curve")
  psnr_t, log_t = _curve(test, "the test curve")
  lo, hi = max(psnr_a[0], psnr_t[0]), min(psnr_a[-1], psnr_t[-1])
  if lo >= hi:
    raise CurveError(f"the curves share no PSNR range (anchor {psnr_a[0]:.2f}-"
                     f"{psnr_a[-1]:.2f} dB, test {psnr_t[0]:.2f}-{psnr_t[-1]:.2f} dB)")
  if psnr_range is not None:
    want_lo, want_hi = psnr_range
    if want_lo >= want_hi:
      raise ValueError(f"psnr_range {psnr_range}: give (low, high) with low < high")
    if max(lo, want_lo) >= min(hi, want_hi):
      raise CurveError(f"the curves' shared PSNR range {lo:.2f}-{hi:.2f} dB lies outside "
                       f"{want_lo:g}-{want_hi:g} dB")
    lo, hi = max(lo, want_lo), min(hi, want_hi)
  mean_diff = (_integral(psnr_t, log_t, lo, hi, method)
               - _integral(psnr_a, log_a, lo, hi, method)) / (hi - lo)
  return BDRate(float(np.expm1(mean_diff) * 100), float(lo), float(hi))
