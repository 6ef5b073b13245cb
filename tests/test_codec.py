"""The learned codec: its prior (models/entropy.py, models/codec.py), the integer tables and
range coder (ae_jax/compression/entropy_coding.py), its codes files (format version 3) and the
guarantee that a decode gives the encoded symbols exactly or fails loudly.

The family guarantees (resume, devices, restore apart, codes round trip) are in
tests/test_families.py ('codec'); its bad field values in tests/test_errors.py."""
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax.training import checkpoint, objectives, train
from ae_jax.compression import compress, entropy_coding
from ae_jax.compression import codes as codes_file
from ae_jax.core.errors import UserError
from ae_jax.models import codec, entropy, registry
from conftest import config_from_flags, run_compress

RECORD = {"encoder": {"name": "factorized",
                      "analysis": {"name": "mlp", "hidden": (32,), "latent_dim": 6}},
          "decoder": {"name": "mlp", "hidden": (32,)}}


# ------------------------------------------------------------------------ the tables

def _laplace_pmf(channels=3, radius=40, scales=(0.5, 2.0, 6.0)):
  k = np.arange(-radius, radius + 1)
  return np.stack([np.exp(-np.abs(k) / s) / np.exp(-np.abs(k) / s).sum()
                   for s in scales[:channels]]), -radius


def test_tables_sum_to_the_precision_with_every_kept_symbol_codable():
  pmf, lo = _laplace_pmf()
  tables = entropy_coding.build_tables(pmf, lo)
  assert tables.check() is None
  total = 1 << entropy_coding.PRECISION
  for c in range(3):
    row = tables.freq[c, :tables.size[c]]
    assert row.sum() == total and row.min() >= 1
    # symmetric densities give symmetric ranges, wider for wider densities
    assert tables.lo[c] == -(tables.size[c] // 2)
  assert tables.size[0] < tables.size[1] < tables.size[2]
  # The frequencies follow the probabilities (to the table's resolution).
  kept = pmf[2, tables.lo[2] - lo: tables.lo[2] - lo + tables.size[2]]
  # (each within 1/total but the most likely, which takes the rounding's remainder)
  np.testing.assert_allclose(tables.freq[2, :tables.size[2]] / total, kept,
                             atol=tables.size[2] / total)
  # Deterministic: the same floats, the same tables.
  again = entropy_coding.build_tables(pmf.copy(), lo)
  np.testing.assert_array_equal(again.freq, tables.freq)


def test_tables_with_a_broken_row_are_refused():
  pmf, lo = _laplace_pmf()
  tables = entropy_coding.build_tables(pmf, lo)
  freq = tables.freq.copy()
  freq[1, 0] += 1
  broken = entropy_coding.Tables(tables.lo, tables.size, freq)
  assert "does not sum" in broken.check()


@pytest.mark.parametrize("dims", [1, 7, 200])
def test_range_coding_round_trips_at_close_to_the_information_content(dims):
  pmf, lo = _laplace_pmf()
  tables = entropy_coding.build_tables(pmf, lo)
  channel_of = np.arange(dims) % 3
  rng = np.random.default_rng(dims)
  symbols = np.stack([
      rng.laplace(0, [0.5, 2.0, 6.0][c], size=300).round().astype(np.int64)
      for c in channel_of], axis=1)
  symbols, _ = entropy_coding.clip(symbols, channel_of, tables)
  streams = entropy_coding.encode(symbols, channel_of, tables)
  np.testing.assert_array_equal(entropy_coding.decode(streams, channel_of, tables), symbols)
  # Cost: the ideal -log2 of the table probabilities, plus 2-3 bytes per stream.
  p = tables.probabilities()[channel_of, symbols - tables.lo[channel_of]]
  ideal = -np.log2(p).sum(axis=1) / 8
  lengths = np.array([len(s) for s in streams])
  assert (lengths >= np.floor(ideal)).all()
  assert np.mean(lengths - ideal) < 3


def test_values_outside_a_table_are_clipped_to_its_ends_and_counted():
  pmf, lo = _laplace_pmf(channels=1, scales=(0.5,))
  tables = entropy_coding.build_tables(pmf, lo)
  hi = tables.lo[0] + tables.size[0] - 1
  symbols, clipped = entropy_coding.clip(np.array([[1000], [-1000], [0]]), np.array([0]),
                                         tables)
  assert clipped == 2 and symbols[:, 0].tolist() == [hi, tables.lo[0], 0]
  with pytest.raises(ValueError, match="clip"):
    entropy_coding.encode(np.array([[1000]]), np.array([0]), tables)


def test_framing_round_trips_and_refuses_short_or_long_data():
  streams = [b"", b"a", bytes(range(200)), b"\x00\x00"]
  data = entropy_coding.frame(streams)
  assert entropy_coding.unframe(data, 4) == streams
  assert entropy_coding.framed_sizes(streams).tolist() == [1, 2, 202, 3]
  for bad, count in ((data[:-1], 4), (data + b"x", 4), (data, 5)):
    with pytest.raises(ValueError):
      entropy_coding.unframe(bad, count)


# ------------------------------------------------------------------------- the prior

def _model_and_params(seed=0):
  model, code = registry.checked_autoencoder(RECORD, (28, 28, 1))
  x = jax.random.uniform(jax.random.key(seed), (4, 28, 28, 1))
  # jitted: eager, each operation compiles alone (the same params, to the bit)
  return model, jax.jit(model.init)(registry.shape_rngs(), x)["params"], x, code


def test_the_prior_is_a_distribution_over_the_integers_per_channel():
  model, params, _, code = _model_and_params()
  pmf = np.asarray(jax.jit(lambda v: model.encoder.apply(v, -255, 255, method="pmf"))(
      {"params": params["encoder"]}))
  assert pmf.shape == (code[-1], 511) and (pmf >= 0).all()
  np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-5)


def test_rate_is_the_bits_of_the_noisy_code_and_its_gradient_reaches_both_halves():
  model, params, x, _ = _model_and_params()

  def rate(p):  # as the train step computes it (evaluation rounds: no gradient to y)
    _, terms, _, _ = objectives.apply_for_training(model.apply, p, x, jax.random.key(7))
    return terms["rate"].mean()

  # The rate is -sum log2 P(y + u) under the prior, per image, u ~ U(-1/2, 1/2).
  # jitted: eager, each operation compiles alone
  enc = {"params": params["encoder"]}
  y = jax.jit(lambda v, x: model.encoder.apply(v, x, method="analyse"))(enc, x)
  noisy, reported = jax.jit(lambda v, x: model.encoder.apply(
      v, x, rngs={"quantization": jax.random.key(7)}, mutable=["losses"]))(enc, x)
  u = np.asarray(noisy - y)
  assert np.abs(u).max() <= 0.5 and np.abs(u).min() > 0 and abs(u.mean()) < 0.1
  p = jax.jit(entropy.FactorizedDensity().apply)({"params": params["encoder"]["prior"]}, noisy)
  np.testing.assert_allclose(reported["losses"]["rate"][0],
                             -np.log2(np.asarray(p)).sum(axis=1), rtol=1e-5)
  grads = jax.jit(jax.grad(rate))(params)
  assert float(jnp.abs(grads["encoder"]["prior"]["matrix0"]).sum()) > 0
  assert float(jnp.abs(grads["encoder"]["transform"]["hidden0"]["kernel"]).sum()) > 0


def test_without_the_quantization_stream_the_code_is_rounded():
  model, params, x, _ = _model_and_params()
  enc = {"params": params["encoder"]}
  # Both sides jitted (eager, each operation compiles alone).
  y = jax.jit(lambda v, x: model.encoder.apply(v, x, method="analyse"))(enc, x)
  np.testing.assert_array_equal(jax.jit(model.encoder.apply)(enc, x), jnp.round(y))


def test_the_floor_lets_a_gradient_raise_a_likelihood_stuck_below_it():
  f = lambda x: entropy._floor(x, 1e-9)  # pylint: disable=protected-access
  assert float(jax.grad(lambda x: -jnp.log(f(x)))(1e-12)) < 0  # pushed up: kept
  assert float(jax.grad(lambda x: f(x))(1e-12)) == 0  # would push it further down: cut


# --------------------------------------------------------------------- codes files

@pytest.fixture(scope="module")
def codec_run(tiny_data, tmp_path_factory):
  """A tiny codec trained for a few steps on the real tfds builder's tiny data."""
  workdir = str(tmp_path_factory.mktemp("codec") / "run")
  idx_dir, data_dir = tiny_data
  train.train_and_evaluate(config_from_flags("configs/codec.py:0.01", [
      f"--config.data_dir={data_dir}", f"--config.idx_dir={idx_dir}",
      "--config.encoder.analysis.hidden=(32,)", "--config.encoder.analysis.latent_dim=12",
      "--config.decoder.hidden=(32,)", "--config.batch_size=32", "--config.num_epochs=2",
      "--config.steps_per_epoch=4", "--config.eval_examples=64",
      "--config.progress_bar=False"]), workdir)
  return workdir


def _images(n=40, seed=0):
  from conftest import make_images  # pylint: disable=import-outside-toplevel
  return make_images(n, seed)[0].reshape(n, 28, 28, 1)


def test_a_codec_run_is_entropy_coded_by_default_and_decodes_to_the_model(codec_run, tmp_path):
  assert compress.default_quant(codec_run) == "entropy"
  images = _images()
  codes = compress.encode(codec_run, images, "entropy")
  path = str(tmp_path / "c.aec")
  compress.save_codes(path, codes)
  with open(path, "rb") as f:
    assert f.read(8)[7] == codes_file.ENTROPY_VERSION
  loaded = compress.load_codes(path)
  np.testing.assert_array_equal(loaded.values, codes.values)
  assert loaded.bytes_per_image == codes.bytes_per_image
  # what the model estimates, to the coder's overhead
  assert codes.bytes_per_image == entropy_coding.framed_sizes(codes.streams).mean()
  estimated = codes.estimated_bits.mean() / 8
  assert codes.bytes_per_image <= estimated * 1.05 + 4
  model, variables = checkpoint.restore_autoencoder(codec_run)
  expected = model.apply(variables, jnp.asarray(images, jnp.float32) / 255, method="reconstruct")
  np.testing.assert_array_equal(compress.decode(loaded, codec_run), expected)


def test_decode_is_bit_exact_in_another_process_after_the_run_is_copied(codec_run, tmp_path):
  images = _images(12, seed=3)
  folder = tmp_path / "pngs"
  folder.mkdir()
  from PIL import Image  # pylint: disable=import-outside-toplevel
  for i, im in enumerate(images):
    Image.fromarray(im[..., 0]).save(folder / f"im{i:02d}.png")
  copy = str(tmp_path / "copied_run")
  shutil.copytree(codec_run, copy)
  # Encoded and decoded here, decoded again from the copy in a process of its own.
  run = lambda *a: run_compress(a, own_process=a[2] == copy)
  enc = run("encode", "--workdir", codec_run, "--images", str(folder),
            "--out", str(tmp_path / "x.aec"))
  assert enc.returncode == 0 and "as entropy" in enc.stdout, enc.stderr
  outs = []
  for i, workdir in enumerate((codec_run, copy)):
    out = tmp_path / f"out{i}"
    dec = run("decode", "--workdir", workdir, "--codes", str(tmp_path / "x.aec"),
              "--out", str(out))
    assert dec.returncode == 0, dec.stderr
    outs.append([np.asarray(Image.open(out / f"im{k:02d}.png")) for k in range(12)])
  assert all(np.array_equal(np.stack(o), np.stack(outs[0])) for o in outs[1:])


def _rewrite(data: bytes, change) -> bytes:
  """A codes file's bytes with its tables changed by `change(tables)` and both checksums
  fixed: a file that is intact but whose probabilities differ from the encoder's."""
  codes = codes_file.codes_from_bytes(data)
  codes.tables = change(codes.tables)
  symbols = codes.values
  blob = codes_file.codes_to_bytes(codes)  # streams as encoded, tables changed
  assert codes.values is symbols
  return blob


def test_other_probabilities_than_the_encoders_fail_loudly_never_silently(codec_run):
  codes = compress.encode(codec_run, _images(), "entropy")
  data = codes_file.codes_to_bytes(codes)

  def shift_mass(t):
    freq = t.freq.copy()
    c = int(np.argmax(t.size))
    top = int(np.argmax(freq[c]))
    other = 0 if top else 1
    freq[c, top] -= 40
    freq[c, other] += 40
    return entropy_coding.Tables(t.lo, t.size, freq)

  bad = _rewrite(data, shift_mass)
  with pytest.raises(UserError, match="decoded symbols do not match the encoded ones"):
    codes_file.codes_from_bytes(bad)


def test_a_perturbed_model_still_decodes_the_same_symbols(codec_run, tmp_path):
  """The tables travel in the file: weights that drifted (another machine's float
  rounding, here a deliberate perturbation of the prior and the decoder) change no symbol;
  the pixels move only as much as the decoder did."""
  codes = compress.encode(codec_run, _images(), "entropy")
  data = codes_file.codes_to_bytes(codes)
  copy = str(tmp_path / "perturbed")
  shutil.copytree(codec_run, copy)
  step = codes.run["step"]
  model, variables = checkpoint.restore_autoencoder(copy, step)
  noisy = jax.tree.map(lambda a: a * (1 + 1e-6), variables)
  # Re-encoding with the perturbed prior would build other tables; decoding does not.
  loaded = codes_file.codes_from_bytes(data)
  np.testing.assert_array_equal(loaded.values, codes.values)
  z = jnp.asarray(loaded.dequantized())
  a = model.decoder.apply({"params": variables["params"]["decoder"]}, z)
  b = model.decoder.apply({"params": noisy["params"]["decoder"]}, z)
  assert float(jnp.abs(a - b).max()) < 1e-3


def test_entropy_coding_a_run_without_a_prior_is_one_clear_line(tmp_path):
  from saved_runs import saved_run  # pylint: disable=import-outside-toplevel
  dense = saved_run(str(tmp_path))
  with pytest.raises(UserError, match="without the learned prior.*--quant uint8"):
    compress.encode(dense, _images(2), "entropy")
  assert compress.default_quant(dense) == "uint8"


def test_the_comparison_tools_measure_a_codec_run_by_its_bitstreams(codec_run):
  from ae_jax.compression import out_of_domain, rate_distortion  # pylint: disable=import-outside-toplevel
  images = _images(20, seed=5)
  row, = rate_distortion.autoencoder_rows(codec_run, images)
  codes = compress.encode(codec_run, images, "entropy")
  assert row["method"] == "learned codec (12 values, 2 epochs)" and row["quant"] == "entropy"
  assert row["bytes_per_image"] == codes.bytes_per_image
  assert row["estimated_bytes_per_image"] == pytest.approx(codes.estimated_bits.mean() / 8)
  assert row["setting"].endswith("λ=0.01") and row["lmbda"] == pytest.approx(0.01)
  digits, _ = out_of_domain.render_digits(10)
  rows, _ = out_of_domain.compare(codec_run, digits, images, quants=("entropy",))
  assert [r["method"] for r in rows] == ["autoencoder entropy", "JPEG, scan only"] * 2
  assert rows[0]["bytes_per_image"] == compress.encode(codec_run, digits,
                                                       "entropy").bytes_per_image


def test_a_cut_the_coder_refuses_as_invalid_ends_the_cutting(monkeypatch):
  """constriction raises (AssertionError: 'invalid for the employed entropy model') on some
  cut streams instead of decoding other symbols; such a cut is not taken."""
  pmf, lo = _laplace_pmf()
  tables = entropy_coding.build_tables(pmf, lo)
  channel_of = np.arange(30) % 3
  symbols = np.zeros((4, 30), np.int64)
  full = [len(s) for s in entropy_coding.encode(symbols, channel_of, tables)]
  real = entropy_coding._decode_one  # pylint: disable=protected-access

  def refuses_short(data, model, probs):
    if len(data) < 6:
      raise AssertionError("Tried to decode from compressed data that is invalid")
    return real(data, model, probs)

  monkeypatch.setattr(entropy_coding, "_decode_one", refuses_short)
  streams = entropy_coding.encode(symbols, channel_of, tables)
  assert all(len(s) >= min(6, n) for s, n in zip(streams, full))
  monkeypatch.setattr(entropy_coding, "_decode_one", real)
  np.testing.assert_array_equal(entropy_coding.decode(streams, channel_of, tables), symbols)
