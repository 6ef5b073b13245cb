"""The maintained benchmarks (benchmarks/README.md), each exercised here without the bench
extra: run.py with its ae_jax runner and matmul probe, vae_vs_pythae.py with its ae_jax peer,
before_after.py, dtype.py and profile_step.py (codec_peer.py: tests/test_codec_peer.py).
The tests that run a peer's own framework (Keras, PyTorch, pythae) skip where it is not
installed. No timing is asserted: the tiny runs only show that each command works."""
import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from benchmarks import before_after, profile_step, run, vae_vs_pythae  # standard library only
from tests.conftest import REPO

BENCHMARKS = os.path.join(REPO, "benchmarks")


def _bench_env(tiny_data) -> dict:
  """The peers' environment for the tiny dataset: ae_jax's runners read the prepared tfds
  copy (AE_JAX_BENCH_DATA_DIR), the other peers its IDX files (FASHION_MNIST_IDX)."""
  idx_dir, data_dir = tiny_data
  return {"AE_JAX_BENCH_DATA_DIR": data_dir, "FASHION_MNIST_IDX": idx_dir,
          "TF_CPP_MIN_LOG_LEVEL": "2"}


# ---------------------------------------------------------------- run.py and its peers

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


def test_run_py_trains_ae_jax_and_tabulates_it_with_the_matmul_peak(tiny_data, tmp_path):
  """The side-by-side command with no peer installed (`--frameworks ae_jax`): the matmul
  probe (peers/matmul_peak.py), then the ae_jax runner (peers/ae_jax_runner.py: the real
  configs/dense.py, 2 epochs of 2 steps of the tiny dataset), each its own process; the
  record, the table and the dense step's share of the probed peak are written."""
  proc = subprocess.run(
      [sys.executable, os.path.join(BENCHMARKS, "run.py"), "--frameworks", "ae_jax",
       "--models", "dense", "--epochs", "2", "--steps_per_epoch", "2", "--repeats", "1",
       "--out_dir", str(tmp_path)], env={**os.environ, **_bench_env(tiny_data)},
      capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (jsonl,) = tmp_path.glob("*.jsonl")
  (record,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
  assert (record["framework"], record["model"], record["epochs"],
          record["steps_per_epoch"], record["num_params"]) == ("ae_jax", "dense", 2, 2, 101_200)
  assert len(record["epoch_seconds"]) == 2 and 0 < record["final_val_loss"] < 1
  assert record["peak_gflops"] > 0  # the probe ran before the repeat
  table = jsonl.with_suffix(".md").read_text()
  assert re.search(r"^\| ae_jax \| dense \| .* \| 101,200 \| 1\.00× \|", table, re.M), table
  assert "of the matmul peak** measured in this run" in table
  assert "--frameworks ae_jax --models dense" in table  # the command that made it


# The peers' frameworks (the bench extra), by run.py's framework name, and the model each
# trains here. keras-jax and keras-tensorflow run the same peers/keras_ae.py (KERAS_BACKEND
# alone differs) as the noise-once row does with --noise once: the denoising model through
# that row covers the Keras script's models, its noise option and run.py's extra flags.
PEER_NEEDS = {"keras-tensorflow-noise-once": (("keras", "tensorflow"), "denoise", 4_385),
              "torch": (("torch",), "dense", 101_200)}


@pytest.mark.parametrize("framework", sorted(PEER_NEEDS))
def test_each_peer_trains_its_model_as_run_py_starts_it(framework, tiny_data, tmp_path,
                                                        monkeypatch):
  """peers/keras_ae.py and peers/torch_ae.py through run.run_one, on the tiny dataset's IDX
  files: the record run.py tabulates, of the same model as ae_jax's."""
  needs, model, num_params = PEER_NEEDS[framework]
  missing = [m for m in needs if importlib.util.find_spec(m) is None]
  if missing:
    pytest.skip(f"{framework} needs {', '.join(missing)} (pip install -e '.[bench]')")
  for key, value in _bench_env(tiny_data).items():
    monkeypatch.setenv(key, value)
  args = argparse.Namespace(epochs=2, steps_per_epoch=2, cold=False, timeout=600,
                            ae_jax_cache_dir=str(tmp_path / "cache"))
  with open(tmp_path / "peers.log", "w") as log:
    record = run.run_one(framework, model, 0, args, log)
  assert record is not None, (tmp_path / "peers.log").read_text()[-3000:]
  assert (record["framework"], record["model"], record["epochs"], record["steps_per_epoch"],
          record["num_params"]) == (framework, model, 2, 2, num_params)
  assert 0 < record["final_val_loss"] < 1 and record["peak_rss_mb"] > 0


def test_the_noise_once_row_is_the_denoising_models_only():
  assert all("keras-tensorflow-noise-once" in run.NO_PEER[m]
             for m in run.MODELS if m not in ("denoise", "conv_wide"))
  assert not any("keras-tensorflow-noise-once" in run.NO_PEER.get(m, ())
                 for m in ("denoise", "conv_wide"))


def _torch_vqvae_peer():
  """benchmarks/peers/torch_vqvae.py as a module (torch is in the bench extra only)."""
  pytest.importorskip("torch")
  peers = os.path.join(BENCHMARKS, "peers")
  sys.path.insert(0, peers)
  spec = importlib.util.spec_from_file_location("torch_vqvae", os.path.join(peers,
                                                                           "torch_vqvae.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_torch_vqvae_peer_is_configs_vqvae_forward_codes_and_ema_update():
  """ae_jax's VQ-VAE parameters copied into the PyTorch peer give the same logits, codes
  and commitment loss, and one EMA update of the codebook gives the same statistics and
  codebook: the same architecture, objective and codebook updates."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from ae_jax.models import registry  # pylint: disable=import-outside-toplevel
  from ae_jax.models.autoencoder import DELTAS, LOSSES  # pylint: disable=import-outside-toplevel
  from configs import vqvae  # pylint: disable=import-outside-toplevel
  peer = _torch_vqvae_peer()
  import torch  # pylint: disable=import-outside-toplevel
  model = registry.make_autoencoder(vqvae.get_config(), (28, 28, 1))
  x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32)
  params = model.init({"params": jax.random.key(0), "sample": jax.random.key(1)}, x)["params"]
  net = peer.VQVAE()
  assert (sum(p.numel() for p in net.parameters()) + sum(b.numel() for b in net.buffers())
          == sum(v.size for v in jax.tree.leaves(params)) == 36_241)
  enc, dec = params["encoder"], params["decoder"]
  convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
  ours = [enc["analysis"]["conv0"], enc["analysis"]["conv1"], enc["analysis"]["code"],
          dec["conv0"], dec["conv1"], dec["output"]]
  with torch.no_grad():
    for layer, p in zip(convs, ours):
      layer.weight.copy_(torch.from_numpy(np.array(p["kernel"]).transpose(3, 2, 0, 1)))
      layer.bias.copy_(torch.from_numpy(np.array(p["bias"])))
    for name in ("codebook", "ema_cluster_size", "ema_embed_sum", "steps_unused"):
      getattr(net, name).copy_(torch.from_numpy(np.array(enc[name])))
  with torch.no_grad():
    logits, commitment, z, idx = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    net.update_codebook(z, idx)
  out, state = model.apply({"params": params}, x, rngs={"sample": jax.random.key(2)},
                           mutable=[DELTAS, LOSSES, "metrics"])
  np.testing.assert_allclose(logits.numpy().transpose(0, 2, 3, 1), out, rtol=1e-4, atol=1e-5)
  codes = model.apply({"params": params}, x, method=lambda m, x: m.encoder.indices(x))
  np.testing.assert_array_equal(idx.numpy(), np.asarray(codes).reshape(-1))
  np.testing.assert_allclose(commitment.numpy(), state[LOSSES]["encoder"]["commitment"][0],
                             rtol=1e-4, atol=1e-7)
  deltas = state[DELTAS]["encoder"]
  for name in ("codebook", "ema_cluster_size", "ema_embed_sum", "steps_unused"):
    np.testing.assert_allclose(getattr(net, name).numpy(), enc[name] + deltas[name],
                               rtol=1e-5, atol=1e-6, err_msg=name)


def test_torch_vqvae_peer_trains_as_run_py_starts_it(tiny_data, tmp_path, monkeypatch):
  """run.py's `--models vqvae` row for PyTorch: peers/torch_vqvae.py through run.run_one on
  the tiny dataset's IDX files; Keras has no VQ-VAE peer, and its rows say so."""
  pytest.importorskip("torch")
  for key, value in _bench_env(tiny_data).items():
    monkeypatch.setenv(key, value)
  args = argparse.Namespace(epochs=2, steps_per_epoch=2, cold=False, timeout=600,
                            ae_jax_cache_dir=str(tmp_path / "cache"))
  with open(tmp_path / "peers.log", "w") as log:
    record = run.run_one("torch", "vqvae", 0, args, log)
  assert record is not None, (tmp_path / "peers.log").read_text()[-3000:]
  assert (record["framework"], record["model"], record["epochs"], record["steps_per_epoch"],
          record["num_params"]) == ("torch", "vqvae", 2, 2, 36_241)
  assert 0 < record["final_val_loss"] < record["final_val_objective"] < 1


def test_run_py_table_says_which_peers_have_no_vqvae():
  summary = {("ae_jax", "vqvae"): {"steps_per_epoch": 468, "seconds_per_epoch": 2.0,
                                   **{k: None for k in run.NUMERIC if k not in
                                      ("steps_per_epoch", "seconds_per_epoch")}}}
  text = run.table(summary, ["ae_jax", "keras-tensorflow", "torch"], ["vqvae"])
  assert "| keras-tensorflow | vqvae | no peer |" in text
  assert "| torch | vqvae | failed |" in text  # a peer that exists but gave no record


# ---------------------------------------------------------------- profile_step.py

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


def test_profile_step_finds_the_conv_steps_convolutions_forward_and_backward():
  """The conv model's step (one step per jit call on the CPU): each conv layer's forward
  convolution is its own kernel, the encoder's first layer an im2col matmul
  (models.PatchConv), the backward pass's convolutions are found too, and the Adam update
  keeps its group: what a per-op profile of the conv step is read from."""
  times, num_steps, _, _, per_call = profile_step.profile("conv", calls=1)
  assert num_steps == per_call == 1
  kernels = {(opcode, profile_step.short(op_name)) for opcode, op_name in times}
  forward = {name for opcode, name in kernels
             if opcode == "convolution" and name.startswith("jvp(Autoencoder)/")}
  assert forward == {"jvp(Autoencoder)/encoder/conv1/conv_general_dilated",
                     "jvp(Autoencoder)/encoder/conv2/conv_general_dilated",
                     *(f"jvp(Autoencoder)/decoder/conv{i}/conv_general_dilated"
                       for i in range(4))}
  assert ("dot", "jvp(Autoencoder)/encoder/conv0/dot_general") in kernels
  assert any(opcode == "convolution" and name.startswith("transpose(jvp(Autoencoder))/")
             for opcode, name in kernels)
  groups = {profile_step.group_of(*key) for key in times}
  assert {"optimizer (Adam)", "matmuls and convolutions", "backward, the rest"} <= groups
  assert "| matmuls and convolutions |" in profile_step.report(times, num_steps, 10.0, 9.0)

def test_profile_step_splits_the_vqvae_step_by_kind_and_layer():
  """configs/vqvae.py's step (the convnet encoder and decoder, the codebook search): its
  kernels sorted into kinds (UpsampleConv's depth-to-space named as such) and layers."""
  times, num_steps, _, _, _ = profile_step.profile("vqvae", calls=1)
  kinds = {profile_step.kind_of(*key) for key in times}
  assert {"convolution", "matmul", "upsampling and depth-to-space", "optimizer (Adam)"} <= kinds
  layers = {profile_step.layer_of(op_name) for _, op_name in times}
  assert {"encoder/analysis/conv0", "encoder/quantize", "decoder/conv0", "decoder/conv1",
          "decoder/output", "(loss)"} <= layers
  text = profile_step.report(times, num_steps, 10.0, 9.0)
  assert "| kind of kernel |" in text and "| `decoder/conv1` |" in text


def test_profile_step_kinds_and_layers_from_op_names():
  fwd = "jit(device_train_steps)/jvp(Autoencoder)/decoder/decoder._upsample/conv1"
  assert profile_step.layer_of(fwd + "/depth_to_space/transpose") == "decoder/conv1/depth_to_space"
  assert profile_step.kind_of("fusion(transpose,copy)", fwd + "/depth_to_space/transpose") == \
      "upsampling and depth-to-space"
  assert profile_step.kind_of("convolution", fwd + "/conv_general_dilated") == "convolution"
  assert profile_step.kind_of("fusion(reduce-window)", "") == "reductions (bias gradients)"
  assert profile_step.pass_of("jit(f)/transpose(jvp(Autoencoder))/encoder/conv0/x") == "backward"
  assert profile_step.layer_of("jit(f)/optimizer/add") == ""
  assert profile_step._fused_opcode("fusion", {"convolution", "add"}) == "convolution"
  assert profile_step._fused_opcode("fusion", {"pad", "add"}) == "fusion(pad)"

# ---------------------------------------------------------------- step_forms.py

def test_step_forms_trains_each_form_alike_and_puts_the_layers_back():
  """benchmarks/step_forms.py on the lecture's conv step: the preset and the literal
  lax.conv forms (tests/test_models.py's references) train the same parameters to the same
  loss, timed in interleaved rounds; ae_jax's own layers are back in place afterwards."""
  from benchmarks import step_forms  # pylint: disable=import-outside-toplevel
  from ae_jax.models import conv, layers, vq  # pylint: disable=import-outside-toplevel
  before = (conv.UpsampleConv, conv.PatchConv, vq.nearest, layers.SAME_2X2_MIN_CHANNELS)
  compiled, images, perm = step_forms.compile_forms("conv", ["preset", "literal", "2x2_from_1"])
  assert (conv.UpsampleConv, conv.PatchConv, vq.nearest, layers.SAME_2X2_MIN_CHANNELS) == before
  results = step_forms.interleaved(compiled, images, perm, rounds=2, calls=1)
  losses = [loss for _, _, loss in results.values()]
  assert max(losses) - min(losses) < 1e-4 and all(len(r[0]) == 2 for r in results.values())
  text = step_forms.table(results)
  assert "| literal |" in text and "× preset" in text


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


def test_vae_vs_pythae_runs_the_ae_jax_peer_and_tabulates_it(tiny_data, tmp_path, monkeypatch):
  """The driver's run of peers/ae_jax_vae.py (configs/vae.py, 2 epochs of 2 steps of the
  tiny dataset, NLL with K=10 on 6 test images): the record it tabulates; with no pythae
  record the table has ae_jax's row and no targets."""
  for key, value in _bench_env(tiny_data).items():
    monkeypatch.setenv(key, value)
  # The prepared copy's splits decoded once, as the driver's first run leaves them (.npy
  # beside it): the peer reads those and never imports TensorFlow, whichever test ran first.
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  source = data.Source("fashion_mnist", tiny_data[1], tiny_data[0], splits=("train", "test"))
  for split in ("train", "test"):
    source.load_images(split)
  args = argparse.Namespace(epochs=2, num_samples=10, threads=1, test_images=6,
                            steps_per_epoch=2, timeout=600)
  with open(tmp_path / "peers.log", "w") as log:
    record = vae_vs_pythae.run_one("ae_jax", args, 0, log)
  assert record is not None, (tmp_path / "peers.log").read_text()[-3000:]
  assert (record["framework"], record["epochs"], record["steps_per_epoch"], record["threads"],
          record["num_params"]) == ("ae_jax", 2, 2, 1, 815_824)
  assert record["test_images"] == 6 and record["num_samples"] == 10 and record["seed"] == 0
  assert record["neg_elbo"] == record["val_neg_elbo_per_epoch"][-1] > 0
  assert record["nll"] > 0 and record["nll_se"] > 0 and record["psnr_db"] > 0
  assert 0 < record["peak_rss_train_mb"] <= record["peak_rss_mb"]
  assert not record["tensorflow_imported"]  # the prepared copy is read as .npy
  table = vae_vs_pythae.table({"ae_jax": [record], "pythae": []})
  assert table.splitlines()[2].startswith(f"| ae_jax | {record['nll']:.2f} ± ")
  assert "met" not in table


# ---------------------------------------------------------------- the research families beside pythae's

def test_family_vs_pythae_judges_the_mse_of_a_deterministic_family():
  """wae, rae, aae: pythae reports the reconstruction MSE, so that is the metric judged
  (at most 1 % above pythae's); iwae, vamp, beta_tc: the NLL, as for the VAE."""
  ours = {"mse": 0.013000, "nll": 500.0, "seconds_per_epoch": 1.0, "peak_rss_train_mb": 500.0}
  theirs = {"mse": 0.012900, "nll": 200.0, "seconds_per_epoch": 2.5, "peak_rss_train_mb": 900.0}
  (what, met, figures), (_, met_epoch, _), (_, met_rss, _) = vae_vs_pythae.targets(
      ours, theirs, "wae")
  assert "MSE" in what and met and "0.013000 vs 0.012900 per pixel: +0.78 %" in figures
  assert met_epoch and met_rss
  assert not vae_vs_pythae.targets({**ours, "mse": 0.013030}, theirs, "rae")[0][1]  # +1.01 %
  what, met, _ = vae_vs_pythae.targets(ours, theirs, "iwae")[0]
  assert "NLL" in what and not met  # the likelihood families: the NLL, not the MSE


def test_family_vs_pythae_gives_both_peers_the_same_run():
  args = argparse.Namespace(family="rae", epochs=3, num_samples=50, threads=1, test_images=20,
                            steps_per_epoch=4)
  ours = vae_vs_pythae.command("ae_jax", args, seed=7)
  theirs = vae_vs_pythae.command("pythae", args, seed=7)
  assert ours[1].endswith("ae_jax_vae.py") and theirs[1].endswith("pythae_family.py")
  shared = ["--family", "rae", "--epochs", "3", "--seed", "7", "--num_samples", "50",
            "--threads", "1", "--test_images", "20"]
  assert ours[2:-2] == theirs[2:-2] == shared
  assert ours[-2:] == ["--steps_per_epoch", "4"]
  assert theirs[-2:] == ["--train_images", "512"]  # 4 batches of 128
  vae = vae_vs_pythae.command("pythae", argparse.Namespace(**{**vars(args), "family": "vae"}), 7)
  assert vae[1].endswith("pythae_vae.py") and "--family" not in vae  # as before issue #31


def test_family_vs_pythae_tabulates_a_familys_runs_and_no_mixture(tmp_path):
  def record(fw, seed, mse, epoch, rss):
    return {"framework": fw, "model": "wae", "seed": seed, "mse": mse, "psnr_db": 19.0,
            "seconds_per_epoch": epoch, "epoch_seconds": [9.0, epoch],
            "peak_rss_train_mb": rss, "peak_rss_mb": rss + 100, "process_seconds": 1.0}
  path = tmp_path / "20261208-000000-wae_vs_pythae.jsonl"
  rows = [record("ae_jax", 0, 0.0130, 1.0, 600), record("pythae", 0, 0.0129, 3.0, 900),
          record("pythae", 1, 0.0131, 5.0, 1000), record("ae_jax", 1, 0.0132, 2.0, 700)]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  text = vae_vs_pythae.tabulate([str(path)])
  assert ("| framework | MSE (per pixel) | PSNR (dB) | s/epoch | peak RSS, training (MiB) | "
          "peak RSS, at the end (MiB) |") in text  # no NLL column: WAE_MMD has none
  assert "| ae_jax | 0.013100 | 19.00 | 1.50 | 650 | 750 |" in text
  assert "**met** (0.013100 vs 0.013000 per pixel: +0.77 %)" in text
  assert "- pythae seed 1: MSE 0.013100, first epoch 9.0 s, 5.00 s/epoch" in text
  other = tmp_path / "rae.jsonl"
  other.write_text(json.dumps({**rows[0], "model": "rae"}) + "\n")
  with pytest.raises(SystemExit, match="one of"):
    vae_vs_pythae.tabulate([str(path), str(other)])


@pytest.mark.parametrize("family", ["wae", "iwae"])
def test_family_vs_pythae_runs_the_ae_jax_peer_and_tabulates_it(family, tiny_data, tmp_path,
                                                                  monkeypatch):
  """The driver's run of peers/ae_jax_vae.py --family (configs/wae.py: MSE only;
  configs/iwae.py: the NLL with K=10 too), 2 epochs of 2 steps of the tiny dataset, 6 test
  images: the record has pythae_family.py's keys, and the table reads it."""
  for key, value in _bench_env(tiny_data).items():
    monkeypatch.setenv(key, value)
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  source = data.Source("fashion_mnist", tiny_data[1], tiny_data[0], splits=("train", "test"))
  for split in ("train", "test"):  # the .npy the peer reads (see the VAE's test above)
    source.load_images(split)
  args = argparse.Namespace(family=family, epochs=2, num_samples=10, threads=1, test_images=6,
                            steps_per_epoch=2, timeout=600, classifier=None, sample_count=5,
                            out=str(tmp_path))
  if family == "wae":  # --classifier: the peer writes prior samples, the driver scores them
    from ae_jax.evaluation import classifier  # pylint: disable=import-outside-toplevel
    args.classifier = str(tmp_path / "classifier")
    classifier.save(args.classifier, classifier.init_params(0),
                    {"architecture": classifier.ARCHITECTURE, "test_accuracy": 0.1,
                     "fd_classifier_train_vs_test": 0.0})
  with open(tmp_path / "peers.log", "w") as log:
    record = vae_vs_pythae.run_one("ae_jax", args, 0, log)
  assert record is not None, (tmp_path / "peers.log").read_text()[-3000:]
  assert ("fd_classifier_samples" in record) == (family == "wae")
  if family == "wae":
    assert record["fd_classifier_samples"] > 0
    assert not list(tmp_path.glob("*.samples.npy*"))  # scored, then removed
    fd_table = vae_vs_pythae.table({"ae_jax": [record], "pythae": [dict(
        record, framework="pythae", fd_classifier_samples=record["fd_classifier_samples"] / 2)]},
        family)
    assert "| FD, prior samples (classifier) |" in fd_table
    assert "samples' FD at most 1 % above pythae's: **not met**" in fd_table
  assert (record["framework"], record["model"], record["epochs"], record["steps_per_epoch"],
          record["test_images"], record["seed"]) == ("ae_jax", family, 2, 2, 6, 0)
  # pythae_family.py's record has these too (its WAE_MMD 805,804 parameters, IWAE 815,824)
  assert record["num_params"] == {"wae": 805_804, "iwae": 815_824}[family]
  assert 0 < record["mse"] < 0.25 and record["psnr_db"] > 0 and "eval_loss" in record
  assert record["test_u8_sum"] > 0 and 0 < record["peak_rss_train_mb"] <= record["peak_rss_mb"]
  assert ("nll" in record) == (family == "iwae")
  table = vae_vs_pythae.table({"ae_jax": [record], "pythae": []}, family)
  first = (f"{record['nll']:.2f} ± " if family == "iwae" else f"{record['mse']:.6f} |")
  assert table.splitlines()[2].startswith(f"| ae_jax | {first}") and "met" not in table
  if family == "iwae":
    assert record["num_samples"] == 10 and record["nll_se"] > 0
    assert f"| {record['mse']:.6f} |" in table


# ---------------------------------------------------------------- before_after.py

def _stub_checkout(root, seconds_per_epoch: float, val_loss: float):
  """A checkout as before_after.py uses one: its own `ae_jax` package and a
  benchmarks/peers/ae_jax_runner.py that prints a runner's record without training
  (s/epoch grows with the seed, so each round's figure is known)."""
  (root / "ae_jax").mkdir(parents=True)
  (root / "ae_jax" / "__init__.py").write_text("")
  (root / "benchmarks" / "peers").mkdir(parents=True)
  (root / "benchmarks" / "peers" / "ae_jax_runner.py").write_text(textwrap.dedent(f"""\
      import argparse, json
      parser = argparse.ArgumentParser()
      for flag in ("--model", "--epochs", "--seed"):
        parser.add_argument(flag)
      args = parser.parse_args()
      print("a line of the run's log")
      print(json.dumps({{"model": args.model, "epochs": int(args.epochs),
                        "seconds_per_epoch": {seconds_per_epoch} * (1 + int(args.seed)),
                        "final_val_loss": {val_loss}, "peak_rss_mb": 500.0}}))
      """))
  return str(root)


def test_before_after_interleaves_two_checkouts_and_divides_new_by_old(tmp_path, monkeypatch):
  old = _stub_checkout(tmp_path / "old", 1.0, 0.3)
  new = _stub_checkout(tmp_path / "new", 0.5, 0.303)
  out = tmp_path / "results"
  out.mkdir()
  monkeypatch.setattr(sys, "argv", ["before_after.py", "--old", old, "--new", new, "--models",
                                    "dense", "conv", "--rounds", "2", "--epochs", "1",
                                    "--out_dir", str(out)])
  before_after.main()
  (jsonl,) = out.glob("*-before_after.jsonl")
  records = [json.loads(line) for line in jsonl.read_text().splitlines()]
  assert [(r["round"], r["model"], r["checkout"]) for r in records] == [
      (0, "dense", "old"), (0, "dense", "new"), (0, "conv", "old"), (0, "conv", "new"),
      (1, "dense", "new"), (1, "dense", "old"), (1, "conv", "new"), (1, "conv", "old")]
  table = jsonl.with_suffix(".md").read_text()
  # old 1.0 and 2.0 s/epoch (seeds 0, 1), new 0.5 and 1.0: 0.5x by medians and per round.
  assert ("| dense | new | 0.750 | 0.500, 1.000 | 0.3030 | 500 | 0.500× | **0.500×** "
          "(0.50, 0.50) | +1.00% |") in table
  assert f"- old: `{old}`" in table and "ae_jax from `ae_jax/__init__.py`" in table


def test_before_after_refuses_a_checkout_that_imports_another_ae_jax(tmp_path, monkeypatch):
  old = tmp_path / "old"
  (old / "benchmarks").mkdir(parents=True)  # no ae_jax/ of its own
  monkeypatch.setattr(sys, "argv", ["before_after.py", "--old", str(old), "--new",
                                    _stub_checkout(tmp_path / "new", 1.0, 0.3),
                                    "--out_dir", str(tmp_path)])
  with pytest.raises(SystemExit, match=f"old: {old} imports ae_jax from .*, not its own"):
    before_after.main()


# ---------------------------------------------------------------- dtype.py

def test_dtype_tabulates_float32_against_bfloat16(tiny_data, monkeypatch, capsys):
  """The dense row: the step in both dtypes (one timed round), then an epoch of the tiny
  dataset with each; bfloat16 compute ends near float32's val BCE."""
  from benchmarks import dtype  # pylint: disable=import-outside-toplevel  (jax, ae_jax)
  for key, value in _bench_env(tiny_data).items():
    monkeypatch.setenv(key, value)
  monkeypatch.setattr(sys, "argv", ["dtype.py", "--models", "dense", "--epochs", "1",
                                    "--rounds", "1"])
  dtype.main()
  (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| dense |")]
  f32_ms, bf16_ms, ratio, bce_f32, bce_bf16, psnr_f32, psnr_bf16 = map(
      float, row.strip("| ").split(" | ")[1:])
  assert f32_ms > 0 and bf16_ms > 0 and ratio == pytest.approx(bf16_ms / f32_ms, abs=0.01)
  assert 0 < bce_f32 < 1 and bce_bf16 == pytest.approx(bce_f32, abs=0.01)
  assert psnr_f32 > 0 and psnr_bf16 > 0


# ---------------------------------------------------------------- what the tree points at

# The one-off investigations removed with issue #27 (their code is read at commit 83c9b83;
# docs/performance.md keeps their findings). Named without their suffix here.
REMOVED = ("gemm_floor", "blas_ffi", "dense_ops", "dense_variants", "xla_flag_variants",
           "noise_forms", "convnet_forms", "init_compile", "start_phases", "eval_ops",
           "conv_ops", "fastest_epochs", "sgemm")
_TEXT = (".md", ".py", ".sh", ".toml", ".ipynb", ".cfg", ".txt", ".yml", ".yaml")


def _tree_texts():
  """(path relative to the repo, text) of the project's text files, less benchmarks/results/
  (the measured tables: records of the commands that made them, left as they were)."""
  for folder, dirs, files in os.walk(REPO):
    rel = os.path.relpath(folder, REPO)
    dirs[:] = [d for d in dirs if not d.startswith(".") and d not in (
        "runs", "build", "__pycache__") and not d.endswith(".egg-info")
               and os.path.join(rel, d) not in ("benchmarks/results", "tests/fixtures")]
    for name in files:
      if name.endswith(_TEXT) or name == "Makefile":
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8", errors="replace") as f:
          yield os.path.relpath(path, REPO), f.read()


def test_nothing_points_at_a_removed_benchmark_without_the_commit_it_is_read_at():
  """Every benchmarks/... script a file names exists, or the commit its code is read at
  follows within a few lines; so does every bare mention of a removed one."""
  path = re.compile(r"benchmarks/[\w./-]+?\.(?:py|cc|sh)\b")
  bare = re.compile(r"(?<![\w/])(?:%s)\.(?:py|cc)\b" % "|".join(REMOVED))
  dangling = []
  for rel, text in _tree_texts():
    for m in [*path.finditer(text), *bare.finditer(text)]:
      exists = m.re is path and os.path.exists(os.path.join(REPO, m.group()))
      if not exists and "83c9b83" not in text[max(0, m.start() - 300):m.end() + 300]:
        dangling.append(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}")
  assert not dangling, "\n".join(dangling)
