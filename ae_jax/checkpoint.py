"""Orbax checkpoints of a run: `encoder`, `decoder` (each the variables dict its module's
`apply` takes) and `state` (the whole TrainState, for resuming), one step per save.

The restore helpers read WORKDIR/config.json to rebuild the module, and restore only the
item they need: `restore_encoder` never builds or reads the decoder, and vice versa.
"""
from __future__ import annotations

import json
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from ae_jax import models
from ae_jax.errors import UserError

ITEMS = ("encoder", "decoder", "state")


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def make_manager(workdir: str, max_to_keep: int | None = 3) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_names=ITEMS)


def save(manager: ocp.CheckpointManager, state) -> None:
  """Saves `state` at `state.step` (asynchronously: call `manager.wait_until_finished()`)."""
  params = state.params
  manager.save(int(state.step), args=ocp.args.Composite(
      encoder=ocp.args.StandardSave({"params": params["encoder"]}),
      decoder=ocp.args.StandardSave({"params": params["decoder"]}),
      state=ocp.args.StandardSave(state)))


def restore_state(manager: ocp.CheckpointManager, abstract_state, step: int | None = None):
  """The full TrainState at `step` (default: the latest), shaped like `abstract_state`."""
  step = manager.latest_step() if step is None else step
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state)))
  return restored["state"]


# ----------------------------------------------------------------- library helpers

def read_run_config(workdir: str) -> dict[str, Any]:
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f"{workdir} holds no run (no config.json): give the --workdir of a "
                    "training run") from None
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"cannot read {path} ({e}): give the workdir of a training run") from None


def _restore_item(workdir: str, item: str, module: nn.Module, example: jax.Array,
                  step: int | None) -> dict:
  abstract = jax.eval_shape(module.init, jax.random.key(0), example)
  with ocp.CheckpointManager(checkpoint_dir(workdir), item_names=ITEMS) as manager:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise UserError(f"{workdir} has no checkpoint yet: train it first "
                      "(python launch.py --workdir ...)")
    restored = manager.restore(step, args=ocp.args.Composite(
        **{item: ocp.args.StandardRestore(abstract)}))
  return restored[item]


def restore_encoder(workdir: str, step: int | None = None) -> tuple[nn.Module, dict]:
  """(encoder module, variables) of a run: `encoder.apply(variables, images)` gives codes."""
  cfg = read_run_config(workdir)
  encoder = models.make_encoder(cfg["model"], cfg["latent_dim"])
  example = jnp.zeros((1, *cfg["image_shape"]), jnp.float32)
  return encoder, _restore_item(workdir, "encoder", encoder, example, step)


def restore_decoder(workdir: str, step: int | None = None) -> tuple[nn.Module, dict]:
  """(decoder module, variables) of a run: `sigmoid(decoder.apply(variables, codes))` gives images."""
  cfg = read_run_config(workdir)
  decoder = models.make_decoder(cfg["model"], cfg["image_shape"])
  example = jnp.zeros((1, *models.code_shape(cfg["model"], cfg["latent_dim"])), jnp.float32)
  return decoder, _restore_item(workdir, "decoder", decoder, example, step)


def restore_autoencoder(workdir: str, step: int | None = None) -> tuple[models.Autoencoder, dict]:
  """(Autoencoder, variables) of a run, for `.apply(v, x, method='encode'|'decode'|'reconstruct')`."""
  encoder, enc_vars = restore_encoder(workdir, step)
  decoder, dec_vars = restore_decoder(workdir, step)
  variables = {"params": {"encoder": enc_vars["params"], "decoder": dec_vars["params"]}}
  return models.Autoencoder(encoder=encoder, decoder=decoder), variables
