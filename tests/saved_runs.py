"""Workdirs holding an untrained but saved autoencoder: a run as the codec tools see it.

Built in well under a second (no data, no training), so the codec tests can make runs of
several models and seeds. Cached per process: session-wide across test modules.
"""
import os

from ae_jax.training import checkpoint, train, workdir as workdir_lib
from configs import dense
from conftest import set_model

_CACHE: dict = {}


def saved_run(root: str, model: str = "dense", latent_dim: int = 8, seed: int = 0) -> str:
  """WORKDIR with config.json and one checkpoint (step 0) of freshly initialized params."""
  key = (root, model, latent_dim, seed)
  if key not in _CACHE:
    config = dense.get_config()
    set_model(config, model, latent_dim)
    config.seed = seed
    workdir = os.path.join(root, f"{model}-K{latent_dim}-seed{seed}")
    workdir_lib.prepare(workdir, workdir_lib.config_record(config, (28, 28, 1)))
    model_ = train.models.from_config(config, (28, 28, 1))
    state = train.create_train_state(model_, config, (28, 28, 1))
    manager = checkpoint.make_manager(workdir)
    checkpoint.save(manager, state)
    manager.wait_until_finished()
    manager.close()
    _CACHE[key] = workdir
  return _CACHE[key]
