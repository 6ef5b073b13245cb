"""benchmarks/run.py's arithmetic (the benchmark itself needs Keras and PyTorch, not in CI),
and benchmarks/profile_step.py on the real dense step."""
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


def test_xla_flag_variants_reports_a_setting_whose_process_dies():
  """oneDNN's dot fusion killed the child with SIGILL on a Zen 5 CPU, which ended the whole
  comparison with a traceback; a dead child is now a result. An unknown flag makes XLA stop
  the child at start-up on any machine."""
  from benchmarks import xla_flag_variants  # pylint: disable=import-outside-toplevel
  result = xla_flag_variants.child("--xla_no_such_flag_for_ae_jax=1")
  assert list(result) == ["crashed"], result
  assert result["crashed"].startswith(("signal SIG", "exit status ")), result
