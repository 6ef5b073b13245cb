"""python -m ae_jax.rate_distortion as a comparison: several runs on one plot and table,
the classic codecs chosen by --codecs (or alone, without a run), another codec's rows from
--extra, the BD-rate tables; and its one-line refusals (docs/errors.md, its own section)."""
import json
import os

import numpy as np
import pytest

from ae_jax.compression import classic_codecs, rate_distortion, rd_compare
from ae_jax.data import pipeline as data
from saved_runs import saved_run  # pylint: disable=wrong-import-order
import test_errors  # pylint: disable=wrong-import-order

SMALL = ["--max_images", "16", "--jpeg_qualities", "5,20,50,90", "--webp_qualities", "0,50",
         "--avif_qualities", "0,50"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Four dense runs (K = 2, 4, 8, 16; initialized, not trained): a K sweep's workdirs."""
  root = str(tmp_path_factory.mktemp("runs"))
  return [saved_run(root, "dense", k) for k in (2, 4, 8, 16)]


def _images(tiny_data, n=16):
  builder = data.get_builder("fashion_mnist", tiny_data[1], tiny_data[0])
  return data.load_images(builder, "test", n)


def test_several_runs_extra_rows_and_bd_rates_in_one_report(runs, tiny_data, tmp_path, capsys):
  # Another codec's results: JPEG's scan-only curve on the same images at half the bytes,
  # so its BD-rate against "JPEG, scan only" is -50 % exactly.
  jpeg = [r for r in classic_codecs.jpeg_rows(_images(tiny_data), (5, 20, 50, 90))
          if r["method"] == "JPEG, scan only"]
  extra = tmp_path / "peer.jsonl"
  extra.write_text("\n".join(json.dumps(
      {"method": "peer codec", "setting": f"λ={i}", "bytes_per_image": r["bytes_per_image"] / 2,
       "psnr": r["psnr"], "ssim": r["ssim"], "seconds_per_epoch": 1.5})
      for i, r in enumerate(jpeg)) + "\n\n")
  out = tmp_path / "rd"
  args = [a for w in runs for a in ("--workdir", w)] + [
      "--data_dir", tiny_data[1], "--out", str(out), "--extra", str(extra),
      "--codecs", "jpeg,webp", "--bd_range", "20,30", *SMALL]
  assert rate_distortion.main(args) == 0
  assert "wrote" in capsys.readouterr().out
  rows = json.load(open(out / "rd.json"))
  uint8 = [r for r in rows if r["method"] == "autoencoder uint8"]
  assert [(r["setting"], r["bytes_per_image"]) for r in uint8] == [
      ("dense K=2", 2), ("dense K=4", 4), ("dense K=8", 8), ("dense K=16", 16)]
  methods = {r["method"] for r in rows}
  assert not methods & {"PNG", "AVIF file", "AVIF, mdat payload"}  # --codecs jpeg,webp
  assert {"WebP file", "WebP, VP8 payload", "peer codec"} <= methods
  peer = [r for r in rows if r["method"] == "peer codec"]
  assert [r["ratio"] for r in peer] == pytest.approx([784 / r["bytes_per_image"] for r in peer])
  assert peer[0]["seconds_per_epoch"] == 1.5 and peer[0]["count"] == "payload"
  bd = {(r["method"], r["anchor"], r["range"]): r for r in json.load(open(out / "rd_bd.json"))}
  overlap = bd[("peer codec", "JPEG, scan only", "overlap")]
  assert overlap["percent"] == pytest.approx(-50.0, abs=1e-6)
  assert (overlap["lo"], overlap["hi"]) == (min(r["psnr"] for r in jpeg),
                                            max(r["psnr"] for r in jpeg))
  ranged = bd[("peer codec", "JPEG, scan only", "20-30 dB")]
  assert ranged["percent"] == pytest.approx(-50.0, abs=1e-6) and ranged["hi"] <= 30
  # WebP has two points here: n/a, and why.
  assert bd[("peer codec", "WebP, VP8 payload", "overlap")]["percent"] is None
  assert "needs at least 4" in bd[("peer codec", "WebP, VP8 payload", "overlap")]["reason"]
  assert ("JPEG, scan only", "JPEG, scan only", "overlap") not in bd  # not against itself
  text = open(out / "rd_bd.md").read()
  assert "| peer codec |" in text and "-50.0 %" in text and "**Over 20–30 dB**" in text
  first = open(out / "rd.md").readline()
  assert first.startswith("16 fashion_mnist test images; autoencoders: ")
  assert first.rstrip().endswith(f"; extra rows: {extra}") and first.count("checkpoint step") == 4


def test_classic_codecs_without_a_run(tiny_data, tmp_path):
  out = tmp_path / "classic"
  assert rate_distortion.main(["--dataset", "fashion_mnist", "--data_dir", tiny_data[1],
                               "--idx_dir", tiny_data[0], "--out", str(out), "--codecs",
                               "avif,png", *SMALL]) == 0
  rows = json.load(open(out / "rd.json"))
  assert [(r["method"], r["setting"]) for r in rows] == [
      ("PNG", "lossless"), ("AVIF file", "quality 0"), ("AVIF, mdat payload", "quality 0"),
      ("AVIF file", "quality 50"), ("AVIF, mdat payload", "quality 50")]
  images = _images(tiny_data)
  decoded, sizes = classic_codecs.avif(images, 50)
  assert rows[3]["bytes_per_image"] == sizes["file"] > rows[4]["bytes_per_image"] == sizes[
      "payload"]
  # The same pictures counted two ways; quality 50 is closer to the originals than 0.
  assert rows[3]["mse"] == rows[4]["mse"] < rows[1]["mse"]
  assert decoded.shape == images.shape
  assert open(out / "rd.md").readline().strip() == (
      "16 fashion_mnist test images; classic codecs only")


def test_webp_of_grayscale_is_measured_on_its_luma(tiny_data):
  """Pillow writes L as RGB (VP8 has no grayscale); the decoded channels agree within 1 and
  the luma is what is measured, close to the originals at high quality."""
  images = _images(tiny_data, 8)
  decoded, sizes = classic_codecs.webp(images, 90)
  assert decoded.shape == images.shape and decoded.dtype == np.uint8
  assert np.abs(decoded.astype(int) - images).mean() < 3
  assert sizes["payload"] == sizes["file"] - 20


def test_runs_of_different_models_get_a_curve_each(tmp_path, tiny_data):
  root = str(tmp_path)
  workdirs = [saved_run(root, "dense", 8), saved_run(root, "conv")]
  rows = rate_distortion.run(workdirs, str(tmp_path / "out"), max_images=4,
                             classic=rate_distortion.Classic(codecs=()),
                             data_dir=tiny_data[1])
  assert {r["method"] for r in rows} == {f"autoencoder {q}, {m}" for q in
                                         ("float32", "float16", "uint8") for m in ("dense", "conv")}


# ------------------------------------------------------------------------ refusals

def _setup(kind, tmp, runs):
  if kind == "jsonl_bad_line":
    (tmp / "peer.jsonl").write_text('{"method": "a", "setting": "1", "bytes_per_image": 9, '
                                    '"psnr": 20, "ssim": 0.5}\n{"method": \n')
  elif kind == "jsonl_missing":
    (tmp / "peer.jsonl").write_text('{"method": "a", "setting": "1", "bytes_per_image": 9}\n')
  elif kind == "jsonl_clash":
    (tmp / "peer.jsonl").write_text('{"method": "JPEG, scan only", "setting": "1", '
                                    '"bytes_per_image": 9, "psnr": 20, "ssim": 0.5}\n')
  elif kind == "jsonl_count":
    (tmp / "peer.jsonl").write_text('[{"method": "a", "setting": "1", "bytes_per_image": 9, '
                                    '"psnr": 20, "ssim": 0.5, "count": "bits"}]')
  elif kind == "jsonl_bytes":
    (tmp / "peer.jsonl").write_text('{"method": "a", "setting": "1", "bytes_per_image": 0, '
                                    '"psnr": 20, "ssim": 0.5}\n')
  return runs[0]


# (what the user did, arguments; {run} = a run, {tmp} = a scratch folder; setup, message)
CASES = [
    ("no --workdir and no --dataset", [], None, "nothing to measure on: give --workdir"),
    ("--workdir and --dataset", ["--workdir", "{run}", "--dataset", "fashion_mnist"], None,
     "--dataset is for the classic codecs alone"),
    ("the same --workdir twice", ["--workdir", "{run}", "--workdir", "{run}"], None,
     "is given twice"),
    ("unknown codec", ["--dataset", "fashion_mnist", "--codecs", "jpeg,heic"], None,
     "--codecs 'jpeg,heic': give a comma-separated list of jpeg, webp, avif, png, or none"),
    ("WebP quality out of range", ["--dataset", "fashion_mnist", "--webp_qualities", "0,101"],
     None, "--webp_qualities must lie in 0..100"),
    ("AVIF quality out of range", ["--dataset", "fashion_mnist", "--avif_qualities", "-1"],
     None, "--avif_qualities must lie in 0..100"),
    ("AVIF speed out of range", ["--dataset", "fashion_mnist", "--avif_speed", "11"], None,
     "--avif_speed '11': give one integer in 0..10"),
    ("BD range the wrong way round", ["--dataset", "fashion_mnist", "--bd_range", "25,21"],
     None, "--bd_range '25,21': give two PSNRs in dB, low first"),
    ("--extra file missing", ["--dataset", "fashion_mnist", "--extra", "{tmp}/none.jsonl"],
     None, "cannot read --extra"),
    ("--extra line not JSON", ["--dataset", "fashion_mnist", "--extra", "{tmp}/peer.jsonl"],
     "jsonl_bad_line", "line 2 is not JSON"),
    ("--extra row without psnr", ["--dataset", "fashion_mnist", "--extra", "{tmp}/peer.jsonl"],
     "jsonl_missing", "row 1 lacks psnr, ssim"),
    ("--extra row named like a measured method",
     ["--dataset", "fashion_mnist", "--extra", "{tmp}/peer.jsonl"], "jsonl_clash",
     "is named like a method this command measures"),
    ("--extra row with an unknown count",
     ["--dataset", "fashion_mnist", "--extra", "{tmp}/peer.jsonl"], "jsonl_count",
     "count='bits' must be one of ('payload', 'file', 'tables shared')"),
    ("--extra row of 0 bytes", ["--dataset", "fashion_mnist", "--extra", "{tmp}/peer.jsonl"],
     "jsonl_bytes", "bytes_per_image=0 must be a number > 0"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_flags_are_one_line_and_make_no_out(case, runs, tiny_data, tmp_path, capsys):
  what, args, kind, message = case
  run = _setup(kind, tmp_path, runs)
  out = tmp_path / "out"
  argv = [a.format(run=run, tmp=tmp_path) for a in args] + [
      "--out", str(out), "--data_dir", tiny_data[1], "--idx_dir", tiny_data[0]]
  assert rate_distortion.main(argv) == 2
  err = capsys.readouterr().err
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
  assert not out.exists()
  line = lines[0].replace(str(tmp_path), "$TMP").replace(run, "$RUN")
  test_errors._check_documented(f"| {what} | `{line.replace('|', '/')}` |", _WRITTEN,  # pylint: disable=protected-access
                                "tests/test_rd_compare.py")


def test_a_reports_own_rd_json_comes_back_as_extra_rows(runs, tiny_data, tmp_path):
  """The classic codecs measured once (--codecs png,jpeg: a lossless row, 'tables shared'
  counts), their rd.json passed back as --extra with --codecs none: the same rows, JPEG's
  curves the anchors of the runs' BD-rates as if measured, PNG the lossless line."""
  first = tmp_path / "classic"
  assert rate_distortion.main(["--dataset", "fashion_mnist", "--data_dir", tiny_data[1],
                               "--idx_dir", tiny_data[0], "--out", str(first),
                               "--codecs", "png,jpeg", *SMALL]) == 0
  measured = json.load(open(first / "rd.json"))
  assert {r["count"] for r in measured} == {"file", "payload", "tables shared"}
  assert [r["psnr"] for r in measured if r["method"] == "PNG"] == [None]
  again = tmp_path / "again"
  assert rate_distortion.main(["--workdir", runs[2], "--data_dir", tiny_data[1], "--out",
                               str(again), "--codecs", "none", "--extra",
                               str(first / "rd.json"), *SMALL]) == 0
  rows = json.load(open(again / "rd.json"))
  back = [r for r in rows if not r["method"].startswith("autoencoder")]
  assert [{k: v for k, v in r.items() if k != "source"} for r in back] == measured
  bd = {(r["method"], r["anchor"]) for r in json.load(open(again / "rd_bd.json"))
        if r["range"] == "overlap"}
  assert {("autoencoder uint8", a) for a in
          ("JPEG file", "JPEG, tables shared", "JPEG, scan only")} <= bd
  assert not {m for m, a in bd if m == "PNG" or a == "PNG"}
  # Still refused: a classic codec's rows where this command measures that codec.
  assert rate_distortion.main(["--workdir", runs[2], "--data_dir", tiny_data[1], "--out",
                               str(tmp_path / "clash"), "--codecs", "jpeg", "--extra",
                               str(first / "rd.json"), *SMALL]) == 2


def test_extra_rows_read_from_a_json_list(tmp_path):
  path = tmp_path / "rows.json"
  path.write_text(json.dumps([{"method": "m", "setting": 1, "bytes_per_image": 3,
                               "psnr": 20, "ssim": 0.5, "count": "file"}]))
  assert rd_compare.read_extra(str(path)) == [
      {"method": "m", "setting": "1", "bytes_per_image": 3.0, "psnr": 20.0, "ssim": 0.5,
       "count": "file", "source": "rows.json"}]


# ------------------------------------------------------------------------ the doc

SECTION = """## Comparing codecs (python -m ae_jax.rate_distortion)

Each row is a test (`tests/test_rd_compare.py`): the command exits with status 2, prints
this one line and makes no `--out`. `$RUN` stands for a run's workdir.

| the user gives | the one line printed (exit status 2) |
|---|---|
"""
_WRITTEN: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _write_doc_section():
  """With AE_JAX_WRITE_ERRORS_DOC set, (re)writes this section of docs/errors.md, before
  the full-disk section (whose writer keeps what precedes it)."""
  yield
  if not (os.environ.get("AE_JAX_WRITE_ERRORS_DOC") and _WRITTEN):
    return
  with open(test_errors.DOC) as f:
    text = f.read()
  section = SECTION + "\n".join(_WRITTEN) + "\n\n"
  start = text.find("## Comparing codecs")
  if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
  else:
    at = text.find("## A full disk")
    text = (text[:at] + section + text[at:]) if at >= 0 else text.rstrip("\n") + "\n\n" + section
  with open(test_errors.DOC, "w") as f:
    f.write(text.rstrip("\n") + "\n")


def test_bd_rates_against_any_method_of_an_rd_json_without_measuring_again(tmp_path, capsys):
  from ae_jax.compression import rd_compare  # pylint: disable=import-outside-toplevel
  psnr = [20.0, 22.0, 24.0, 26.0]
  rows = ([{"method": "peer", "setting": str(p), "bytes_per_image": 10.0 * 2 ** i, "psnr": p}
           for i, p in enumerate(psnr)]
          + [{"method": "mine", "setting": str(p), "bytes_per_image": 5.0 * 2 ** i, "psnr": p}
             for i, p in enumerate(psnr)]
          + [{"method": "PNG", "setting": "lossless", "bytes_per_image": 500.0, "psnr": None}])
  path = tmp_path / "rd.json"
  path.write_text(json.dumps(rows))
  assert rd_compare.main([str(path), "--anchor", "peer", "--range", "21,25"]) == 0
  out = capsys.readouterr().out
  assert "| mine | -50.0 % (20.0–26.0 dB) |" in out and "| mine | -50.0 % (21.0–25.0 dB) |" in out
  assert rd_compare.main([str(path), "--anchor", "nobody"]) == 2
  assert "no rows of method 'nobody'" in capsys.readouterr().err
