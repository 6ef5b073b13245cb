"""Data parallelism with JAX's own SPMD machinery: one `data` mesh axis over all devices.

Parameters and optimizer state are replicated, every batch is sharded along `data`, and
`jit` partitions the step; the same code runs on 1 CPU, 8 GPUs or a pod slice. Several
processes join through `jax.distributed.initialize` when the environment says so.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ae_jax.core.errors import UserError

AXIS = "data"
# Cluster managers jax.distributed.initialize() detects by itself (process count, rank,
# coordinator), by the variable that counts the processes launched together: srun's job
# step (not SLURM_NTASKS, which an salloc or sbatch shell also has, where `python` runs as
# one process) and mpirun's. With JAX_COORDINATOR_ADDRESS set, JAX_NUM_PROCESSES and
# JAX_PROCESS_ID say the rest.
_AUTO_DETECTED = ("SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE")


def initialize_from_env() -> None:
  """Calls `jax.distributed.initialize` when the environment describes several processes."""
  if jax.distributed.is_initialized():
    return
  address = os.environ.get("JAX_COORDINATOR_ADDRESS")
  if address:
    try:
      num, pid = int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ["JAX_PROCESS_ID"])
    except (KeyError, ValueError):
      raise UserError("JAX_COORDINATOR_ADDRESS is set: also set JAX_NUM_PROCESSES and "
                      "JAX_PROCESS_ID (integers) for every process") from None
    if num > 1:
      _cpu_collectives()
      jax.distributed.initialize(address, num_processes=num, process_id=pid)
    return
  for var in _AUTO_DETECTED:
    if int(os.environ.get(var, "1") or 1) > 1:
      _cpu_collectives()
      jax.distributed.initialize()
      return


def _cpu_collectives() -> None:
  # Cross-process collectives on CPU need gloo; GPU and TPU ignore this option.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")


def make_mesh() -> Mesh:
  """A 1-D mesh over every device of every process."""
  return Mesh(np.asarray(jax.devices()), (AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, field: str = "batch_size") -> None:
  n = jax.device_count()
  if batch_size % n:
    raise UserError(f"{field} {batch_size} is not a multiple of the {n} devices: use "
                    f"--config.{field}={max(n, batch_size // n * n)}")


def global_array(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A global array from a host array that every process holds in full."""
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def from_local_batch(x: np.ndarray, mesh: Mesh) -> jax.Array:
  """The global batch whose rows on this process are `x` (its share)."""
  return jax.make_array_from_process_local_data(batch_sharding(mesh), x)


def is_main_process() -> bool:
  return jax.process_index() == 0


_MESSAGE_BYTES = 4096


def on_main_process(fn) -> None:
  """Runs `fn` on process 0 alone; every process then waits for it. A UserError that `fn`
  raises is raised on every process, with its message: the others would otherwise wait
  for process 0 at their next collective until gloo or the coordinator gives up."""
  if jax.process_count() == 1:
    fn()
    return
  message = b""
  if is_main_process():
    try:
      fn()
    except UserError as e:
      message = str(e).encode()[:_MESSAGE_BYTES]
  buffer = np.zeros(_MESSAGE_BYTES, np.uint8)
  buffer[:len(message)] = np.frombuffer(message, np.uint8)
  shared = multihost_utils.broadcast_one_to_all(buffer)  # a collective: the sync point
  if shared.any():
    raise UserError(bytes(np.asarray(shared)).rstrip(b"\0").decode(errors="replace"))
