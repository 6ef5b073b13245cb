"""Data parallelism: 4 simulated devices in one process, and 2 processes x 2 devices (gloo),
each against the one-device run of the same global batch."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from ae_jax.training import checkpoint, parallel
from ae_jax.data import pipeline as data
from ae_jax.core.errors import UserError
from conftest import REPO

KEYS = ("train_loss", "val_loss", "val_psnr")


def _args(tiny_data, workdir, pipeline):
  idx_dir, data_dir = tiny_data
  return [sys.executable, os.path.join(REPO, "launch.py"), "--config", "configs/denoise.py",
          "--workdir", workdir, f"--config.data_dir={data_dir}", f"--config.idx_dir={idx_dir}",
          f"--config.input_pipeline={pipeline}", "--config.batch_size=32",
          "--config.steps_per_epoch=4", "--config.num_epochs=2", "--config.eval_examples=64",
          "--config.progress_bar=False"]


def _env(devices, **extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
  env.update(TF_CPP_MIN_LOG_LEVEL="2", **extra,
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  return env


def _run(args, env):
  return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _finish(proc):
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  return err


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def _assert_close(rows, reference):
  assert [r["step"] for r in rows] == [r["step"] for r in reference]
  for row, ref in zip(rows, reference):
    for key in KEYS:  # only the order of the sums over devices differs
      assert row[key] == pytest.approx(ref[key], rel=1e-5), key


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.parametrize("pipeline,hosts", [("device", True), ("stream", False)])
def test_many_devices_and_hosts_match_one_device(tiny_data, tmp_path, pipeline, hosts):
  """4 devices (and, for the device pipeline, 2 processes x 2 devices) vs 1 device.

  The streaming pipeline's per-process shares are checked in-process below, which keeps
  the suite short; both pipelines run on 4 devices."""
  one, four, two = (str(tmp_path / n) for n in ("one", "four", "two_hosts"))
  procs = [_run(_args(tiny_data, one, pipeline), _env(1)),
           _run(_args(tiny_data, four, pipeline), _env(4))]
  for p in procs:
    _finish(p)
  reference = _metrics(one)
  _assert_close(_metrics(four), reference)
  runs = {"one": one, "four": four}
  if hosts:
    port = _free_port()
    procs = [_run(_args(tiny_data, two, pipeline),
                  _env(2, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                       JAX_PROCESS_ID=str(i))) for i in range(2)]
    errs = [_finish(p) for p in procs]
    assert "epoch 2/2" in errs[0] and "epoch 2/2" not in errs[1]  # process 0 alone reports
    _assert_close(_metrics(two), reference)
    runs["two"] = two
  # The multi-device checkpoints restore on this single-device process.
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
  codes = {}
  for name, workdir in runs.items():
    encoder, variables = checkpoint.restore_encoder(workdir)
    codes[name] = np.asarray(encoder.apply(variables, x))
  for name in runs:
    np.testing.assert_allclose(codes[name], codes["one"], rtol=1e-4, atol=1e-5)


def test_process_shares_of_a_stream_make_the_global_batch(tiny_data):
  builder = data.get_builder("fashion_mnist", tiny_data[1])
  kwargs = dict(batch_size=32, steps=2, epoch=0, seed=3, loc=0.5, scale=0.1, first_step=0)
  whole = list(data.stream_epoch(builder, "train", **kwargs))
  shares = [list(data.stream_epoch(builder, "train", num_shards=2, shard=i, **kwargs))
            for i in range(2)]
  for b, (noisy, clean) in enumerate(whole):
    np.testing.assert_array_equal(np.concatenate([s[b][0] for s in shares]), noisy)
    np.testing.assert_array_equal(np.concatenate([s[b][1] for s in shares]), clean)


def test_batch_size_must_divide_over_devices(monkeypatch):
  monkeypatch.setattr(jax, "device_count", lambda: 4)
  with pytest.raises(UserError, match="batch_size 30 is not a multiple of the 4 devices: "
                                      "use --config.batch_size=28"):
    parallel.check_batch_size(30)
  parallel.check_batch_size(32)


def test_half_a_distributed_environment_is_refused(monkeypatch):
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
  monkeypatch.delenv("JAX_NUM_PROCESSES", raising=False)
  with pytest.raises(UserError, match="also set JAX_NUM_PROCESSES and JAX_PROCESS_ID"):
    parallel.initialize_from_env()


@pytest.mark.parametrize("env,joins", [
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, False),  # an salloc/sbatch shell: one process
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "4"}, True),  # srun
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "1"}, False),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, True),  # mpirun -n 2
])
def test_cluster_launchers_start_the_distributed_runtime_only_for_several_processes(
    monkeypatch, env, joins):
  # No SLURM or MPI exists here: jax.distributed.initialize is replaced by a recorder.
  for var in ("JAX_COORDINATOR_ADDRESS", "SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE"):
    monkeypatch.delenv(var, raising=False)
  for var, value in env.items():
    monkeypatch.setenv(var, value)
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
  monkeypatch.setattr(parallel, "_cpu_collectives", lambda: None)
  parallel.initialize_from_env()
  assert calls == ([((), {})] if joins else [])


def test_an_error_on_process_0_stops_every_process(tiny_data, tmp_path):
  # Process 0 alone prepares the workdir. When it refuses it (here: it holds a run of
  # another config), process 1 must stop with the same one-line error instead of waiting
  # for process 0 at the next sync.
  workdir = tmp_path / "run"
  workdir.mkdir()
  other_run = json.dumps({"encoder": {"name": "conv"}, "decoder": {"name": "conv"},
                          "image_shape": [28, 28, 1]})
  (workdir / "config.json").write_text(other_run)
  port = _free_port()
  procs = [_run(_args(tiny_data, str(workdir), "device"),
                _env(2, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                     JAX_PROCESS_ID=str(i))) for i in range(2)]
  for proc in procs:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(
        f"error: --workdir {workdir} holds a run with another config"), err[-2000:]
    assert "Traceback" not in err
  assert (workdir / "config.json").read_text() == other_run  # nothing overwritten
