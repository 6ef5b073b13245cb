"""benchmarks/run.py's arithmetic (the benchmark itself needs Keras and PyTorch, not in CI),
and benchmarks/profile_step.py on the real dense step."""
import pytest

from benchmarks import profile_step, run  # standard library only at import


def test_peak_share_counts_the_dense_steps_flops_against_the_probes():
  # 468 steps at 0.642 ms = 64.2 MFLOP / 0.642 ms = 100 GFLOP/s.
  step = run.DENSE_STEP_FLOP / 100e9
  records = [{"seconds_per_epoch": 468 * step, "steps_per_epoch": 468, "peak_gflops": 200.0},
             {"seconds_per_epoch": 468 * step, "steps_per_epoch": 468, "peak_gflops": 100.0}]
  text = run.peak_share(records)
  assert "= 100 GFLOP/s = **50% of the matmul peak**" in text  # against the best probe
  assert "(200 GFLOP/s, the best of 2 probes" in text and "100–200" in text
  assert "75% median (50–100%)" in text  # each repeat against its own probe


def test_peak_share_says_nothing_without_probes():
  assert run.peak_share([{"seconds_per_epoch": 0.3, "steps_per_epoch": 468}]) is None
  assert run.peak_share([]) is None


def test_peak_share_leaves_out_one_epoch_runs():
  # With one epoch, seconds_per_epoch is epoch 1: compile included, not the step's speed.
  record = {"seconds_per_epoch": 1.1, "steps_per_epoch": 5, "peak_gflops": 150.0, "epochs": 1}
  assert run.peak_share([record]) is None
  assert run.peak_share([{**record, "epochs": 2}]) is not None


def test_fastest_epochs_compare_each_frameworks_quickest_epoch_after_the_first():
  records = {("ae_jax", "dense"): [{"epoch_seconds": [0.9, 0.4, 0.3]},
                                   {"epoch_seconds": [0.1, 0.35]}],  # epoch 1 never counts
             ("keras-jax", "dense"): [{"epoch_seconds": [2.0, 0.6, 0.75]}],
             ("ae_jax", "conv"): [{"epoch_seconds": [5.0]}]}  # one epoch: nothing to say
  lines = run.fastest_epochs(records, ["ae_jax", "keras-jax"], ["dense", "conv"])
  assert lines == ["dense, fastest epoch: ae_jax 0.300 s; keras-jax 0.600 s (0.50×)."]


def test_profile_step_finds_the_dense_steps_five_matmuls_its_optimizer_and_its_batch():
  # The real dense train step, one jit call traced by the JAX profiler: the kernels are
  # matched to the compiled HLO and grouped by what they compute (no timings asserted).
  times, num_steps, _, _, per_call = profile_step.profile("dense", calls=1)
  assert num_steps == per_call > 1
  matmuls = {profile_step.short(op_name): n for (opcode, op_name), (_, n) in times.items()
             if opcode == "dot" and "Autoencoder" in op_name}
  assert sorted(matmuls) == [  # forward 2, backward 3 (the image needs no gradient)
      "jvp(Autoencoder)/decoder/output/dot_general",
      "jvp(Autoencoder)/encoder/latent_vector/dot_general",
      "transpose(jvp(Autoencoder))/decoder/output/dot_general",
      "transpose(jvp(Autoencoder))/decoder/output/transpose",
      "transpose(jvp(Autoencoder))/encoder/latent_vector/transpose"]
  assert set(matmuls.values()) == {num_steps}  # each once per step
  groups = {profile_step.group_of(*key) for key in times}
  # steps.py's name scopes reach the kernels: the Adam update and the batch gather.
  assert {"optimizer (Adam)", "batch gather and noise", "matmuls and convolutions"} <= groups
  table = profile_step.report(times, num_steps, traced_ms=1.0, step_ms=0.9)
  assert "| optimizer (Adam) |" in table and "| **traced step** | **1000.0** | 100% |" in table


# ---------------------------------------------------------------- pythae's VAE beside ae_jax's

def _pythae_peer():
  """benchmarks/peers/pythae_vae.py as a module (pythae is in the bench extra only)."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  pytest.importorskip("pythae")
  peers = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "benchmarks", "peers")
  sys.path.insert(0, peers)
  spec = importlib.util.spec_from_file_location("pythae_vae", os.path.join(peers, "pythae_vae.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_pythae_peer_is_configs_vae_and_its_loss_is_ae_jax_objective():
  """The same weights in both give the same function and the same -ELBO terms: pythae's
  loss (BCE of probabilities summed per image + KL, batch mean) equals ae_jax's
  'bernoulli' reconstruction + the encoder's KL, at z = the posterior mean."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from ae_jax.core import metrics  # pylint: disable=import-outside-toplevel
  from ae_jax.models import registry, vae  # pylint: disable=import-outside-toplevel
  from configs import vae as vae_config  # pylint: disable=import-outside-toplevel
  peer = _pythae_peer()  # skips where the bench extra (pythae, torch) is not installed
  import torch  # pylint: disable=import-outside-toplevel
  model = registry.make_autoencoder(vae_config.get_config(), (28, 28, 1))
  x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32)
  params = model.init(jax.random.key(0), x)["params"]
  enc, dec = peer.Encoder(), peer.Decoder()
  theirs = sum(p.numel() for p in [*enc.parameters(), *dec.parameters()])
  assert theirs == sum(v.size for v in jax.tree.leaves(params)) == 815_824
  pairs = [(enc.hidden, params["encoder"]["hidden0"]), (enc.mean, params["encoder"]["mean"]),
           (enc.logvar, params["encoder"]["logvar"]), (dec.hidden, params["decoder"]["hidden0"]),
           (dec.out, params["decoder"]["output"])]
  with torch.no_grad():
    for layer, p in pairs:
      layer.weight.copy_(torch.from_numpy(np.array(p["kernel"]).T))
      layer.bias.copy_(torch.from_numpy(np.array(p["bias"])))
  pv = peer.VAE(peer.VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"),
                encoder=enc, decoder=dec)
  x_t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    out = enc(x_t)
    mu, logvar = out.embedding, out.log_covariance
    loss, recon, kl = pv.loss_function(dec(mu).reconstruction, x_t, mu, logvar, mu)
  mean, lv = model.apply({"params": params}, x, method=lambda m, x: m.encoder.posterior(x))
  np.testing.assert_allclose(mu.numpy(), mean, rtol=1e-4, atol=1e-5)
  logits = model.apply({"params": params}, mean, method="decode")  # sigmoid of the logits
  np.testing.assert_allclose(dec(mu).reconstruction.detach().numpy().transpose(0, 2, 3, 1),
                             logits, rtol=1e-4, atol=1e-6)
  ours_recon = metrics.reconstruction_loss(
      "bernoulli", model.apply({"params": params}, mean, method=lambda m, z: m.decoder(z)), x)
  ours_kl = vae.kl_to_standard_normal(mean, lv)
  np.testing.assert_allclose(float(recon), float(ours_recon.mean()), rtol=1e-4)
  np.testing.assert_allclose(float(kl), float(ours_kl.mean()), rtol=1e-4)
  np.testing.assert_allclose(float(loss), float((ours_recon + ours_kl).mean()), rtol=1e-4)


def test_pythae_peer_trains_a_few_steps_and_scores_them(tmp_path):
  """The peer for real (pythae's TrainingPipeline, the IDX files), 2 epochs of 2 batches:
  its record has what benchmarks/vae_vs_pythae.py reads, with values that fit."""
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  pytest.importorskip("pythae")
  script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "benchmarks", "peers", "pythae_vae.py")
  proc = subprocess.run(
      [sys.executable, script, "--epochs", "2", "--train_images", "256", "--test_images", "6",
       "--num_samples", "10", "--threads", "1"], capture_output=True, text=True, check=False,
      cwd=tmp_path, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  record = json.loads(proc.stdout.splitlines()[-1])
  assert record["framework"] == "pythae" and record["threads"] == 1
  assert record["epochs"] == 2 and record["steps_per_epoch"] == 2 and record["test_images"] == 6
  assert record["num_params"] == 815_824 and record["num_samples"] == 10
  assert len(record["epoch_seconds"]) == 2 and record["seconds_per_epoch"] > 0
  # After 4 steps from the start the -ELBO is hundreds of nats per image, the second
  # epoch's below the first's; the K-sample NLL is of the same size, with a spread.
  first, last = record["val_neg_elbo_per_epoch"]
  assert 100 < last < first < 600 and last == record["neg_elbo"]
  assert 100 < record["nll"] < 600 and record["nll_se"] > 0
  assert 5 < record["psnr_db"] < 20
  assert 0 < record["peak_rss_train_mb"] <= record["peak_rss_mb"]


def test_vae_vs_pythae_targets_are_judged_on_the_ratios():
  from benchmarks import vae_vs_pythae  # pylint: disable=import-outside-toplevel
  ours = {"nll": 240.0, "seconds_per_epoch": 1.0, "peak_rss_train_mb": 500.0}
  theirs = {"nll": 238.0, "seconds_per_epoch": 2.5, "peak_rss_train_mb": 499.0}
  (nll, met_nll, _), (epoch, met_epoch, text), (rss, met_rss, _) = vae_vs_pythae.targets(
      ours, theirs)
  assert met_nll  # +0.84 %
  assert met_epoch and "0.40x" in text
  assert not met_rss  # one MiB higher
  assert not vae_vs_pythae.targets({**ours, "nll": 240.4}, {**theirs, "nll": 238.0})[0][1]
  assert not vae_vs_pythae.targets(ours, {**theirs, "seconds_per_epoch": 1.9})[1][1]
  assert "NLL" in nll and "epoch" in epoch and "RSS" in rss


def test_vae_vs_pythae_gives_both_peers_the_same_run():
  import argparse  # pylint: disable=import-outside-toplevel
  from benchmarks import vae_vs_pythae  # pylint: disable=import-outside-toplevel
  args = argparse.Namespace(epochs=3, num_samples=50, threads=1, test_images=20,
                            steps_per_epoch=4)
  ours = vae_vs_pythae.command("ae_jax", args, seed=7)
  theirs = vae_vs_pythae.command("pythae", args, seed=7)
  shared = ["--epochs", "3", "--seed", "7", "--num_samples", "50", "--threads", "1",
            "--test_images", "20"]
  assert ours[2:-2] == theirs[2:-2] == shared
  assert ours[-2:] == ["--steps_per_epoch", "4"]
  assert theirs[-2:] == ["--train_images", "512"]  # 4 batches of 128


def test_vae_vs_pythae_tabulates_the_medians_of_earlier_runs(tmp_path):
  import json  # pylint: disable=import-outside-toplevel
  from benchmarks import vae_vs_pythae  # pylint: disable=import-outside-toplevel

  def record(fw, seed, nll, epoch, rss):
    return {"framework": fw, "seed": seed, "nll": nll, "nll_se": 0.5, "neg_elbo": nll + 3,
            "psnr_db": 20.0, "seconds_per_epoch": epoch, "epoch_seconds": [9.0, epoch],
            "peak_rss_train_mb": rss, "peak_rss_mb": rss + 100, "process_seconds": 1.0,
            "nll_seconds": 1.0}
  paths = []
  for i, rows in enumerate([[record("ae_jax", 0, 240.0, 1.0, 600), record("pythae", 0, 239.0, 3.0, 900)],
                            [record("pythae", 1, 241.0, 5.0, 1000), record("ae_jax", 1, 242.0, 2.0, 700)]]):
    paths.append(tmp_path / f"{i}.jsonl")
    paths[-1].write_text("".join(json.dumps(r) + "\n" for r in rows))
  text = vae_vs_pythae.tabulate([str(p) for p in paths])
  assert "| ae_jax | 241.00 ± 0.50 | 244.00 | 20.00 | 1.50 | 650 | 750 |" in text
  assert "| pythae | 240.00 ± 0.50 | 243.00 | 20.00 | 4.00 | 950 | 1050 |" in text
  assert "**met** (241.00 vs 240.00 nats: +0.42 %)" in text
  assert "**met** (1.50 vs 4.00 s: 0.38x)" in text and "650 vs 950 MiB" in text
  assert "- pythae seed 1: NLL 241.00, first epoch 9.0 s, 5.00 s/epoch" in text
