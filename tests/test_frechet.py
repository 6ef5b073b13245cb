"""The sample-quality metric: the Fréchet distance (ae_jax/evaluation/frechet.py) on
feature sets whose answer is known in closed form, the classifier whose features it uses
(ae_jax/evaluation/classifier.py) trained on the tiny IDX dataset, and both commands end
to end, with their one-line refusals."""
import json
import os
import warnings

import numpy as np
import pytest

from ae_jax.evaluation import classifier, code_table, frechet
from ae_jax.training import train
from saved_runs import saved_run
from test_vae import tiny_vae_config


def _whitened(n, d, seed):
  """[n, d] with sample mean exactly 0 and sample covariance (N - 1) exactly I."""
  x = np.random.default_rng(seed).normal(size=(n, d))
  x -= x.mean(0)
  return x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T


def test_a_set_is_at_distance_zero_from_itself_and_the_distance_is_symmetric():
  a = np.random.default_rng(0).normal(size=(500, 6)) @ np.random.default_rng(1).normal(
      size=(6, 6))
  b = np.random.default_rng(2).normal(1.0, 2.0, size=(400, 6))
  assert frechet.frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
  assert frechet.frechet_distance(a, b) == pytest.approx(frechet.frechet_distance(b, a),
                                                         rel=1e-9)
  assert frechet.frechet_distance(a, b) > 1


def test_the_distance_of_diagonal_gaussians_is_the_closed_form():
  """N(m1, diag s1^2) to N(m2, diag s2^2): |m1 - m2|^2 + sum (s1 - s2)^2, here exactly,
  the samples' means and covariances being made exactly those."""
  x = _whitened(300, 4, 0)
  m1, s1 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 2.0, 0.5, 1.0])
  m2, s2 = np.array([1.0, 1.0, 0.0, 0.5]), np.array([3.0, 2.0, 1.5, 0.1])
  a, b = m1 + x * s1, m2 + _whitened(200, 4, 1) * s2
  closed = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)  # 5 + 4 + 1 + 0.81
  assert closed == pytest.approx(10.81)
  assert frechet.frechet_distance(a, b) == pytest.approx(closed, rel=1e-10)
  assert frechet.frechet_distance(x, x + [3.0, 0, 0, 0]) == pytest.approx(9.0, rel=1e-10)


def test_the_trace_term_equals_the_symmetric_form():
  """tr (S1 S2)^(1/2) = sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2)."""
  a = np.random.default_rng(3).normal(size=(200, 5)) @ np.random.default_rng(4).normal(
      size=(5, 5))
  b = np.random.default_rng(5).normal(size=(300, 5)) @ np.random.default_rng(6).normal(
      size=(5, 5)) + 0.3
  (mu1, s1), (mu2, s2) = frechet.gaussian_fit(a), frechet.gaussian_fit(b)
  w, v = np.linalg.eigh(s1)
  half = v @ np.diag(np.sqrt(w)) @ v.T
  trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(half @ s2 @ half), 0, None)).sum()
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * trace_root
  assert frechet.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_fewer_images_than_features_give_a_finite_distance_and_no_warning():
  a = np.random.default_rng(0).normal(size=(20, 64))
  b = np.random.default_rng(1).normal(size=(30, 64))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert np.isfinite(frechet.frechet_distance(a, b))


# -------------------------------------------------------------------- the classifier

@pytest.fixture(scope="module")
def trained_classifier(tiny_data, tmp_path_factory):
  """The classifier command on the tiny dataset (3 epochs of 4 steps)."""
  out = str(tmp_path_factory.mktemp("classifier") / "clf")
  assert classifier.main(["--out", out, "--idx_dir", tiny_data[0], "--epochs", "3"]) == 0
  return out


def test_the_classifier_command_writes_its_folder_and_training_lowers_the_loss(
    trained_classifier, capsys):
  params, info = classifier.load(trained_classifier)
  assert sorted(os.listdir(trained_classifier)) == ["classifier.json", "classifier.npz"]
  # The tiny dataset's labels are random: no accuracy to expect, but the fit improves.
  losses = info["train_loss_per_epoch"]
  assert len(losses) == 3 and losses[-1] < losses[0] - 0.05, losses
  assert (info["feature_size"], info["epochs"], info["seed"]) == (128, 3, 0)
  assert 0 <= info["test_accuracy"] <= 1 and info["test_images"] == 128
  assert np.isfinite(info["fd_classifier_train_vs_test"])
  images = code_table.read_labelled(info["idx_dir"])["test"][0][:10]
  f = classifier.features(params, images)
  assert f.shape == (10, 128) and f.dtype == np.float32
  np.testing.assert_array_equal(f, classifier.features(params, images / 255.0))
  capsys.readouterr()
  assert classifier.main(["--out", trained_classifier, "--idx_dir", info["idx_dir"]]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "pass --overwrite" in err


def test_training_is_deterministic(tiny_data):
  (x, y), _ = code_table.read_labelled(tiny_data[0]).values()
  first, _ = classifier.train(x[:256], y[:256], epochs=1)
  again, _ = classifier.train(x[:256], y[:256], epochs=1)
  np.testing.assert_array_equal(classifier.features(first, x[:16]),
                                classifier.features(again, x[:16]))


# ----------------------------------------------------------------- the FD command

@pytest.fixture(scope="module")
def vae_run(tiny_data, tmp_path_factory):
  config = tiny_vae_config(tiny_data)
  config.steps_per_epoch, config.num_epochs = 4, 1
  workdir = str(tmp_path_factory.mktemp("vae") / "run")
  train.train_and_evaluate(config, workdir)
  return workdir


def test_the_command_writes_a_report_of_finite_distances(vae_run, trained_classifier,
                                                         tmp_path, capsys):
  out = tmp_path / "report.json"
  argv = ["--workdir", vae_run, "--classifier", trained_classifier, "--num", "200",
          "--out", str(out)]
  assert frechet.main(argv) == 0, capsys.readouterr().err
  printed = capsys.readouterr().out.splitlines()
  assert printed[0].startswith("FD (Fashion-MNIST classifier features), 200 prior samples "
                               "vs 128 fashion_mnist test images: ")
  assert "FID" not in "\n".join(printed)
  report = json.loads(out.read_text())
  assert report["metric"] == "fd_classifier" and report["prior"] == "normal"
  assert report["num_samples"] == 200 and report["test_images"] == 128
  for key in ("fd_classifier_samples", "fd_classifier_reconstructions"):
    assert np.isfinite(report[key]) and report[key] >= 0, key
  assert float(printed[0].rsplit(": ", 1)[1]) == pytest.approx(
      report["fd_classifier_samples"], abs=1e-3)
  before = out.read_bytes()
  assert frechet.main(argv) == 2  # never over a report without --overwrite
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "pass --overwrite" in err and out.read_bytes() == before


def test_a_run_without_a_prior_is_one_line(trained_classifier, tmp_path, capsys):
  run = saved_run(str(tmp_path), "dense", latent_dim=8)
  assert frechet.main(["--workdir", run, "--classifier", trained_classifier]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1
  assert "has no prior to sample from" in err


def test_a_missing_or_damaged_classifier_is_one_line(vae_run, trained_classifier, tmp_path,
                                                     capsys):
  damaged = tmp_path / "damaged"
  damaged.mkdir()
  for name in os.listdir(trained_classifier):
    data = open(os.path.join(trained_classifier, name), "rb").read()
    (damaged / name).write_bytes(data[:len(data) // 2] if name.endswith(".npz") else data)
  for folder in (tmp_path / "missing", damaged):
    assert frechet.main(["--workdir", vae_run, "--classifier", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --classifier {folder} ") and err.count("\n") == 1, err
    assert err.strip().endswith(f"train one with python -m ae_jax.classifier --out {folder}")
