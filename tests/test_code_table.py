"""The code table (ae_jax/evaluation/code_table.py): its probe, k-NN and PCA on data whose
answers are known, and the command end to end on a saved run and the tiny IDX dataset."""
import numpy as np
import pytest

from ae_jax.evaluation import code_table
from saved_runs import saved_run


def _blobs(n, seed, classes=4, d=6, spread=0.3):
  rng = np.random.default_rng(seed)
  centers = np.random.default_rng(99).normal(0, 3, (classes, d))
  y = rng.integers(0, classes, n)
  return centers[y] + rng.normal(0, spread, (n, d)), y


def test_the_probe_and_knn_classify_separable_codes_and_not_noise():
  x, y = _blobs(600, 0)
  tx, ty = _blobs(200, 1)
  assert code_table.probe_accuracy(x, y, tx, ty) == 1.0
  assert code_table.knn_accuracy(x, y, tx, ty) == 1.0
  noise = np.random.default_rng(2).normal(size=(600, 6))
  assert code_table.probe_accuracy(noise, y, tx * 0 + np.random.default_rng(3).normal(
      size=(200, 6)), ty) < 0.45


def test_knn_votes_among_the_k_nearest():
  train = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
  labels = np.array([0, 0, 1, 1, 1])
  assert code_table.knn_accuracy(train, labels, np.array([[0.05]]), np.array([0]), k=3) == 1
  assert code_table.knn_accuracy(train, labels, np.array([[4.0]]), np.array([1]), k=3) == 1


def test_pca_at_full_rank_reconstructs_and_its_codes_are_decorrelated():
  x = np.random.default_rng(0).normal(size=(300, 5)) @ np.random.default_rng(1).normal(
      size=(5, 5))
  encode, decode = code_table.pca(x, 5)
  np.testing.assert_allclose(decode(encode(x)), x, atol=1e-9)
  c = np.cov(encode(x).T)
  np.testing.assert_allclose(c - np.diag(np.diag(c)), 0, atol=1e-9)
  assert np.all(np.diff(np.diag(c)) <= 0)  # by decreasing variance


def test_the_command_prints_a_row_per_run_and_the_baselines(tiny_data, tmp_path, capsys):
  run = saved_run(str(tmp_path), "dense", latent_dim=8)
  small = saved_run(str(tmp_path), "dense", latent_dim=3)
  idx_dir, _ = tiny_data
  assert code_table.main(["--workdir", run, "--workdir", small, "--workdir", run,
                          "--idx_dir", idx_dir, "--bytes_images", "10"]) == 0
  out = capsys.readouterr().out.strip().splitlines()
  assert out[0].startswith("| code | numbers | linear probe")
  rows = [line.split(" | ") for line in out[2:]]
  # PCA once per code size the runs have, smallest first.
  assert [r[0].lstrip("| ") for r in rows] == [
      "dense-K8-seed0 (dense)", "dense-K3-seed0 (dense)", "dense-K8-seed0 (dense)",
      "raw pixels", "PCA 3", "PCA 8"]
  assert rows[0][1] == "8" and rows[0][5] == "8.0 (uint8)" and rows[3][1] == "784"
  assert rows[4][1] == "3" and rows[5][1] == "8"
  assert float(rows[5][4]) > float(rows[4][4])  # 8 components reconstruct more than 3
  assert float(rows[5][4]) > float(rows[0][4])  # PCA beats an untrained autoencoder


def test_without_labels_it_is_one_line(tmp_path, capsys):
  run = saved_run(str(tmp_path), "dense", latent_dim=8)
  assert code_table.main(["--workdir", run, "--idx_dir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "needs the dataset's IDX files with their labels" in err and err.count("\n") == 1
