"""The hyperprior codec: its model (ae_jax/models/hyperprior.py), the scale table and
Gaussian integer tables with escapes (ae_jax/compression/latent_coding.py), its codes files
(format version 4: images of any sizes) and the guarantees that a decode gives the encoded
symbols exactly or fails loudly, in another process and after the run is copied, and that
the bytes written are the model's own estimate to 3 % + 4 B.

The family guarantees (resume, devices, restore apart, codes round trip) are in
tests/test_families.py ('hyperprior', 'codec_conv')."""
import json
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax.compression import compress, entropy_coding, hyper_codec, latent_coding
from ae_jax.compression import codes as codes_file
from ae_jax.core.errors import UserError
from ae_jax.models import entropy, registry
from ae_jax.training import checkpoint, objectives, train
from conftest import config_from_flags, run_compress

RECORD = {"encoder": {"name": "hyperprior",
                      "analysis": {"name": "gdn", "features": 8, "latent_channels": 12,
                                   "levels": 3},
                      "hyper_features": 8, "hyper_levels": 2},
          "decoder": {"name": "gdn", "features": 8, "levels": 3}}
TINY_MODEL = ["--config.encoder.analysis.features=8", "--config.encoder.analysis.latent_channels=12",
              "--config.encoder.hyper_features=8", "--config.decoder.features=8"]


# ---------------------------------------------------------------------------- the model

def _model(mean_scale=True, seed=0):
  record = json.loads(json.dumps(RECORD))
  record["encoder"]["mean_scale"] = mean_scale
  model, code = registry.checked_autoencoder(record, (28, 28, 1))
  x = jax.random.uniform(jax.random.key(seed), (3, 28, 28, 1))
  return model, jax.jit(model.init)(registry.shape_rngs(), x)["params"], x, code


def _normal_cdf(x):
  return 0.5 * math.erfc(-x / math.sqrt(2))


@pytest.mark.parametrize("mean_scale", [True, False])
def test_rate_is_the_bits_of_y_under_its_gaussian_plus_the_bits_of_z(mean_scale):
  model, params, x, code = _model(mean_scale)
  assert code == (4, 4, 12)
  enc = {"params": params["encoder"]}
  apply = jax.jit(model.encoder.apply, static_argnames=("method", "mutable"))
  params_of = jax.jit(lambda e, z, y_shape: model.encoder.apply(e, z, y_shape,
                                                                method="gaussian_params"),
                      static_argnums=2)
  # Without the sample stream: symbols round(y - μ), the code symbols + μ.
  y, z = apply(enc, x, method="latents")
  z_hat = jnp.round(z)
  scales, means = params_of(enc, z_hat, y.shape[1:])
  assert scales.min() >= np.float32(entropy.SCALE_BOUND)
  # (ẑ is 0 at init: try other integers for the means)
  other = jax.random.randint(jax.random.key(1), z.shape, -3, 4).astype(jnp.float32)
  _, other_means = params_of(enc, other, y.shape[1:])
  assert (float(jnp.abs(other_means).max()) > 0) == mean_scale
  code_hat, reported = apply(enc, x, mutable=("losses", "metrics"))
  symbols = np.rint(np.asarray(y - means))
  np.testing.assert_allclose(code_hat, symbols + np.asarray(means), rtol=0, atol=1e-6)
  p_y = np.vectorize(lambda v, s: _normal_cdf((0.5 - abs(v)) / s) - _normal_cdf((-0.5 - abs(v)) / s))(
      symbols.astype(np.float64), np.asarray(scales, np.float64))
  bits_y = -np.log2(np.maximum(p_y, 1e-9)).reshape(3, -1).sum(1)
  p_z = jax.jit(entropy.FactorizedDensity().apply)({"params": params["encoder"]["prior"]},
                                                   z_hat)
  bits_z = -np.log2(np.asarray(p_z, np.float64)).reshape(3, -1).sum(1)
  np.testing.assert_allclose(reported["metrics"]["rate_z"][0], bits_z, rtol=1e-4)
  np.testing.assert_allclose(reported["losses"]["rate"][0], bits_y + bits_z, rtol=1e-4)


@pytest.mark.parametrize("family", ["hyperprior", "codec"])
def test_evaluation_rounds_the_code_as_the_codes_files_do(family):
  """The train step draws the noise that stands in for rounding (the 'quantization'
  stream); the eval step (objectives.apply) rounds, whatever its 'sample' key: its val_rate
  and val_psnr are the quantized code's, as compress's files (they were the noisy
  relaxation's: 41.7 B/image logged where the bitstream took 9.5 B, 19.50 against 18.32 dB,
  at lambda 0.0003)."""
  if family == "hyperprior":
    model, params, x, _ = _model()
  else:
    from configs import codec  # pylint: disable=import-outside-toplevel
    config = codec.get_config()
    config.encoder.analysis.hidden, config.decoder.hidden = (16,), (16,)
    model = registry.make_autoencoder(config, (28, 28, 1))
    x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
    params = jax.jit(model.init)(registry.shape_rngs(), x)["params"]
  evaluate = jax.jit(lambda p, k: objectives.apply(model.apply, p, x, k))
  train = jax.jit(lambda p, k: objectives.apply_for_training(model.apply, p, x, k)[:3])
  (a, terms_a, _), (b, terms_b, _) = evaluate(params, jax.random.key(1)), evaluate(
      params, jax.random.key(2))
  np.testing.assert_array_equal(a, b)  # no noise: the key does not matter
  np.testing.assert_array_equal(terms_a["rate"], terms_b["rate"])
  logits, sown = jax.jit(lambda p: model.apply({"params": p}, x, mutable=["losses"]))(params)
  np.testing.assert_array_equal(a, logits)  # what the compression tools' restore computes
  t1, t2 = train(params, jax.random.key(1)), train(params, jax.random.key(2))
  assert not np.array_equal(t1[0], t2[0]) and not np.array_equal(t1[0], a)


def test_training_adds_uniform_noise_and_the_rate_gradient_reaches_every_part():
  model, params, x, _ = _model()
  enc = {"params": params["encoder"]}
  apply = jax.jit(model.encoder.apply, static_argnames=("method", "mutable"))
  y, _ = apply(enc, x, method="latents")
  noisy = apply(enc, x, rngs={"quantization": jax.random.key(3)}, mutable=("losses",))[0]
  u = np.asarray(noisy - y)
  assert np.abs(u).max() <= 0.5 and np.abs(u).min() > 0 and abs(u.mean()) < 0.1

  def rate(p):  # as the train step computes it
    return objectives.apply_for_training(model.apply, p, x, jax.random.key(7))[1][
        "rate"].mean()

  grads = jax.jit(jax.grad(rate))(params)["encoder"]
  for part in ("transform", "h_a", "h_s", "prior"):
    assert float(sum(jnp.abs(g).sum() for g in jax.tree.leaves(grads[part]))) > 0, part


# ------------------------------------------------------------------------- the tables

def test_the_scale_table_is_compressais_and_indexes_round_scales_up():
  table = latent_coding.scale_table()
  assert len(table) == 64 and table[0] == pytest.approx(0.11) and table[-1] == pytest.approx(256)
  np.testing.assert_allclose(np.diff(np.log(table)), math.log(256 / 0.11) / 63)
  scales = np.array([0.01, 0.11, 0.1101, table[5], table[5] * 1.0001, 255.0, 256.0, 1e6],
                    np.float32)
  # CompressAI's build_indexes: start at the last index, one down per entry (all but the
  # last) that is >= the scale.
  expected = [63 - sum(s <= np.float32(t) for t in table[:-1]) for s in scales]
  np.testing.assert_array_equal(latent_coding.scale_indexes(scales, table), expected)
  assert expected[:3] == [0, 0, 1] and expected[-1] == 63


def test_gaussian_tables_follow_the_gaussian_with_an_escape_and_are_deterministic():
  table = latent_coding.scale_table()
  tables = latent_coding.gaussian_tables(table)
  assert tables.check() is None and tables.channels == 64
  total = 1 << entropy_coding.PRECISION
  for i in (0, 20, 63):
    s, n = table[i], tables.size[i]
    assert tables.lo[i] == -(n - 2) // 2  # symmetric range, then the escape
    freq = tables.freq[i, :n]
    k = np.arange(tables.lo[i], tables.lo[i] + n - 1)
    p = np.array([_normal_cdf((a + 0.5) / s) - _normal_cdf((a - 0.5) / s) for a in k])
    np.testing.assert_allclose(freq[:-1] / total, p, atol=(n + 1) / total)
    assert freq[-1] >= 1  # the escape is always codable
  again = latent_coding.gaussian_tables(latent_coding.scale_table())
  assert latent_coding.tables_crc32(again) == latent_coding.tables_crc32(tables)


def test_streams_round_trip_any_integer_at_close_to_the_information_content():
  table = latent_coding.scale_table()
  models = latent_coding.Models(latent_coding.gaussian_tables(table))
  rng = np.random.default_rng(0)
  lengths, ideal = [], []
  for _ in range(20):
    scales = np.exp(rng.uniform(np.log(0.05), np.log(300), 300)).astype(np.float32)
    index = latent_coding.scale_indexes(scales, table)
    symbols = np.rint(rng.normal(0, scales)).astype(np.int64)
    data = latent_coding.encode_image([(symbols, index, models)])
    np.testing.assert_array_equal(latent_coding.StreamReader(data).part(index, models), symbols)
    p = models.tables.probabilities()[index, symbols - models.tables.lo[index]]
    lengths.append(len(data))
    ideal.append(-np.log2(p).sum() / 8)
  assert np.all(np.array(lengths) >= np.floor(ideal)) and np.mean(np.subtract(lengths, ideal)) < 3
  # far outside every table (both sides, and the extremes of int32): escaped, exact
  wild = np.array([0, 10**6, -10**6, 2**31 - 1, -2**31 + 1, 3, -3], np.int64)
  index = np.zeros(len(wild), np.int32)
  data = latent_coding.encode_image([(wild, index, models)])
  np.testing.assert_array_equal(latent_coding.StreamReader(data).part(index, models), wild)


def test_learned_tables_keep_the_likely_symbols_and_escape_the_rest():
  k = np.arange(-40, 41)
  pmf = np.stack([np.exp(-np.abs(k) / s) / np.exp(-np.abs(k) / s).sum() for s in (0.5, 4.0)])
  tables = latent_coding.learned_tables(pmf, -40)
  assert tables.check() is None
  assert tables.size[0] < tables.size[1] and tables.lo[0] == -(tables.size[0] - 2) // 2
  models = latent_coding.Models(tables)
  symbols = np.array([0, 1, -39, 40, 500, -3])
  groups = np.array([0, 1, 0, 1, 0, 1])
  data = latent_coding.encode_image([(symbols, groups, models)])
  np.testing.assert_array_equal(latent_coding.StreamReader(data).part(groups, models), symbols)


# --------------------------------------------------------------------- a trained run

@pytest.fixture(scope="module")
def hyper_run(tiny_data, tmp_path_factory):
  """A tiny mean-scale hyperprior trained for 48 steps on the tiny dataset."""
  workdir = str(tmp_path_factory.mktemp("hyperprior") / "run")
  idx_dir, data_dir = tiny_data
  train.train_and_evaluate(config_from_flags("configs/hyperprior.py:0.01", [
      f"--config.data_dir={data_dir}", f"--config.idx_dir={idx_dir}", *TINY_MODEL,
      "--config.batch_size=32", "--config.num_epochs=3", "--config.steps_per_epoch=16",
      "--config.eval_examples=64", "--config.progress_bar=False"]), workdir)
  return workdir


def _reconstruct(model):
  """The model's reconstruction, jitted (eager, the GDN layers compile op by op)."""
  return jax.jit(lambda v, x: model.apply(v, x, method="reconstruct"))


def _images(n=40, seed=0):
  from conftest import make_images  # pylint: disable=import-outside-toplevel
  return make_images(n, seed)[0].reshape(n, 28, 28, 1)


def _sized(shapes, seed=0):
  """uint8 images of the given (H, W) sizes: rectangles, as the tiny dataset's."""
  rng = np.random.default_rng(seed)
  out = []
  for h, w in shapes:
    im = np.zeros((h, w, 1), np.uint8)
    r, c = rng.integers(0, max(h - 4, 1)), rng.integers(0, max(w - 4, 1))
    im[r:r + rng.integers(3, max(h // 2, 4)), c:c + rng.integers(3, max(w // 2, 4))] = 200
    out.append(im)
  return out


def test_a_hyperprior_run_is_coded_within_its_estimate_and_decodes_to_the_model(hyper_run,
                                                                               tmp_path):
  assert compress.default_quant(hyper_run) == "entropy"
  images = _images()
  codes = compress.encode(hyper_run, images, "entropy")
  path = str(tmp_path / "c.aec")
  compress.save_codes(path, codes)
  with open(path, "rb") as f:
    assert f.read(8)[7] == 4
  loaded = compress.load_codes(path)
  assert loaded.bytes_per_image == codes.bytes_per_image and loaded.streams == codes.streams
  # Actual bytes (z included, stream and length prefix) within 3 % + 4 B of the estimate.
  actual = entropy_coding.framed_sizes(codes.streams)
  estimated = codes.estimated_bits / 8
  assert actual.mean() <= estimated.mean() * 1.03 + 4, (actual.mean(), estimated.mean())
  assert actual.mean() >= estimated.mean() * 0.97 - 4, (actual.mean(), estimated.mean())
  model, variables = checkpoint.restore_autoencoder(hyper_run)
  expected = _reconstruct(model)(variables, jnp.asarray(images, jnp.float32) / 255)
  np.testing.assert_allclose(compress.decode(loaded, hyper_run), expected, atol=1e-6)


def test_images_of_mixed_sizes_come_back_at_their_sizes(hyper_run):
  sizes = [(28, 28), (37, 50), (16, 16), (28, 28), (9, 70), (64, 40)]
  images = _sized(sizes)
  codes = compress.encode(hyper_run, images, "entropy", names=[f"im{i}" for i in range(6)],
                          batch_size=2)
  data = compress.codes_to_bytes(codes)
  loaded = codes_file.codes_from_bytes(data)
  assert [s[:2] for s in loaded.image_shapes] == sizes and loaded.names == codes.names
  decoded = compress.decode(loaded, hyper_run)
  assert [d.shape for d in decoded] == [(h, w, 1) for h, w in sizes]
  # each image is what the autoencoder gives it alone, at its size
  model, variables = checkpoint.restore_autoencoder(hyper_run)
  for im, out in zip(images, decoded):
    dec = model.decoder.clone(image_shape=im.shape)
    expected = _reconstruct(model.clone(decoder=dec))(variables,
                                                      jnp.asarray(im[None], jnp.float32) / 255)
    np.testing.assert_allclose(out, expected[0], atol=1e-5)


def test_decode_is_bit_exact_in_another_process_after_the_run_is_copied(hyper_run, tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  folder = tmp_path / "pngs"
  folder.mkdir()
  sizes = [(28, 28), (40, 33), (20, 64), (28, 28)]
  for i, im in enumerate(_sized(sizes, seed=3)):
    Image.fromarray(im[..., 0]).save(folder / f"im{i:02d}.png")
  copy = str(tmp_path / "copied_run")
  shutil.copytree(hyper_run, copy)
  # Encoded and decoded here, decoded again from the copy in a process of its own.
  run = lambda *a: run_compress(a, own_process=a[2] == copy)
  enc = run("encode", "--workdir", hyper_run, "--images", str(folder),
            "--out", str(tmp_path / "x.aec"))
  assert enc.returncode == 0 and "as entropy" in enc.stdout, enc.stderr
  outs = []
  for i, workdir in enumerate((hyper_run, copy)):
    out = tmp_path / f"out{i}"
    dec = run("decode", "--workdir", workdir, "--codes", str(tmp_path / "x.aec"),
              "--out", str(out), "--images", str(folder))
    assert dec.returncode == 0, dec.stderr
    assert "PSNR" in dec.stdout
    outs.append([np.asarray(Image.open(out / f"im{k:02d}.png")) for k in range(4)])
  assert [o.shape for o in outs[0]] == sizes
  assert all(np.array_equal(a, b) for a, b in zip(outs[0], outs[1]))


def test_a_desynchronised_decode_fails_loudly_never_silently(hyper_run):
  """Other scales than the encoder's (h_s's weights perturbed, as another machine's
  rounding could), other z tables in the file, or other Gaussian tables: each one line."""
  images = _images(10, seed=4)
  codes = compress.encode(hyper_run, images, "entropy")
  loaded = codes_file.codes_from_bytes(compress.codes_to_bytes(codes))
  encoder, enc_vars = checkpoint.restore_encoder(hyper_run)
  decoder, dec_vars = checkpoint.restore_decoder(hyper_run)
  hyper_codec.decode(loaded, encoder, enc_vars, decoder, dec_vars)  # as they are: fine
  skewed = jax.tree_util.tree_map_with_path(
      lambda path, a: a * 1.5 if "h_s" in jax.tree_util.keystr(path) else a, enc_vars)
  # Either the coder finds the data invalid for the model, or the symbol check fires.
  with pytest.raises(UserError, match="decoded symbols do not match|do not decode"):
    hyper_codec.decode(loaded, encoder, skewed, decoder, dec_vars)
  # z's tables shifted (the file intact otherwise)
  t = loaded.tables
  freq = t.freq.copy()
  c = int(np.argmax(t.size))
  top = int(np.argmax(freq[c]))
  freq[c, top] -= 300
  freq[c, 0 if top else 1] += 300
  loaded.tables = entropy_coding.Tables(t.lo, t.size, freq)
  bad = codes_file.codes_from_bytes(compress.codes_to_bytes(loaded))
  with pytest.raises(UserError, match="decoded symbols do not match|do not decode"):
    compress.decode(bad, hyper_run)
  # a scale table whose tables are not the encoder's
  loaded = codes_file.codes_from_bytes(compress.codes_to_bytes(codes))
  loaded.scales = {**loaded.scales, "tables_crc32": loaded.scales["tables_crc32"] ^ 1}
  with pytest.raises(UserError, match="Gaussian tables built here differ"):
    compress.decode(loaded, hyper_run)


def test_the_rate_distortion_tool_measures_a_hyperprior_run_by_its_bitstreams(hyper_run):
  from ae_jax.compression import rate_distortion  # pylint: disable=import-outside-toplevel
  images = _images(20, seed=5)
  row, = rate_distortion.autoencoder_rows(hyper_run, images)
  codes = compress.encode(hyper_run, images, "entropy")
  assert row["method"] == "hyperprior codec (mean-scale, 192 values, 3 epochs)"
  assert row["quant"] == "entropy" and row["bytes_per_image"] == codes.bytes_per_image
  assert row["estimated_bytes_per_image"] == pytest.approx(codes.estimated_bits.mean() / 8)
  assert row["setting"].endswith("λ=0.01")


def test_whole_measures_each_image_at_its_own_size_in_bits_per_pixel(hyper_run, tmp_path,
                                                                     capsys):
  """rate_distortion --whole (photographs): every codec codes each image at its own size as
  its own file; a row is the mean over the images, bits per pixel their bits over their
  pixels."""
  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import classic_codecs, rate_distortion
  from ae_jax.core import quality
  from ae_jax.training import runs
  from conftest import write_png_folder
  sizes = [(28, 28), (37, 50), (16, 40)]
  images = _sized(sizes, seed=3)
  step = runs.run_identity(hyper_run)["step"]
  classic = rate_distortion.Classic(codecs=("jpeg",), jpeg_qualities=(50,))
  rows = rate_distortion.whole_rows(images, lambda one: rate_distortion.measure(
      one, lambda: rate_distortion._autoencoder_rows([hyper_run], [step], one), classic=classic))
  by = {r["method"]: r for r in rows}
  codec = by["hyperprior codec (mean-scale, 3 epochs)"]  # the code's size left the name
  each = [compress.encode(hyper_run, [im], "entropy").bytes_per_image for im in images]
  pixels = sum(h * w for h, w in sizes)
  assert codec["bytes_per_image"] == pytest.approx(np.mean(each))
  assert codec["bits_per_pixel"] == pytest.approx(8 * sum(each) / pixels)
  decoded = [compress.decode(compress.encode(hyper_run, [im], "entropy"), hyper_run)
             for im in images]
  assert codec["psnr"] == pytest.approx(np.mean(
      [float(quality.psnr(quality.to_uint8(d), im[None])[0]) for d, im in zip(decoded, images)]),
      abs=1e-4)
  scan = by["JPEG, scan only"]
  jpegs = [classic_codecs.jpeg(im[None], 50) for im in images]
  assert scan["bytes_per_image"] == pytest.approx(np.mean([s["scan only"] for _, s in jpegs]))
  assert scan["psnr"] == pytest.approx(np.mean(
      [float(quality.psnr(r, im[None])[0]) for (r, _), im in zip(jpegs, images)]), abs=1e-4)
  assert scan["ratio"] == pytest.approx(sum(h * w for h, w in sizes) / sum(
      s["scan only"] for _, s in jpegs))
  # The tool on a folder of several sizes: --whole, else refused in one line naming it.
  folder = tmp_path / "mixed"
  write_png_folder(str(folder / "train"), images)
  write_png_folder(str(folder / "test"), images)
  argv = ["--dataset", f"folder:{folder}", "--data_dir", str(tmp_path / "tfds"), "--codecs",
          "png", "--out", str(tmp_path / "rd")]
  assert rate_distortion.main(argv) == 2
  assert "add --whole" in capsys.readouterr().err
  assert rate_distortion.main(argv + ["--whole"]) == 0
  png, = json.load(open(tmp_path / "rd" / "rd.json"))
  assert png["images"] == 3 and png["bits_per_pixel"] == pytest.approx(
      8 * png["bytes_per_image"] * 3 / pixels)
  assert "each whole (28x28, 40x16, 50x37)" in open(tmp_path / "rd" / "rd.md").read()
