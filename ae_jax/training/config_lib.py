"""Checks a config before anything runs: every user mistake becomes one `UserError` line."""
from __future__ import annotations

import ast
import math
import re
from typing import Any, Mapping, Sequence

import ml_collections

from ae_jax.core.errors import UserError
from ae_jax.models.registry import lecture_model  # noqa: F401  (configs' and tests' name)

PIPELINES = ("auto", "device", "stream")
DTYPES = ("float32", "bfloat16")
# Groups whose keys are not fixed by configs/default.py: the encoder's and decoder's
# fields are their module's (checked by ae_jax/models/registry.py), loss_weights names the
# terms the model reports, weight_decay the halves of the model.
OPEN_GROUPS = ("encoder", "decoder", "loss_weights", "weight_decay")
# The groups that name a model family: a `name` given to one of them (or to a group nested
# in one, as the codec's encoder.analysis) on the command line switches its family.
MODEL_GROUPS = ("encoder", "decoder")
# Fields that may change when a run is resumed (train longer, at another rate; where the
# same data is found; how it is shown or saved; steps per jit call, which gives the same
# steps); all others must match. Changes are logged in WORKDIR/config_changes.jsonl.
RESUMABLE_CHANGES = ("num_epochs", "progress_bar", "checkpoint_every_steps",
                     "checkpoints_to_keep", "learning_rate", "num_images", "steps_per_call",
                     "data_dir", "idx_dir")
# The numbers the jitted steps take: loss weights are float32 constants there, so a weight
# above float32's largest number is inf (`loss_weights.kl=1e300` trained to an inf loss, and
# blamed the learning rate), and a positive one below its smallest normal number is 0
# (XLA:CPU flushes subnormals: 2 * 1e-39 is 0 in a jitted step). Step counts are int32:
# `loss_warmup_steps=99999999999` ended in an OverflowError traceback inside jit.
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_MIN_NORMAL = 1.1754943508222875e-38
INT32_LIMIT = 2**31


def _unknown_fields(config, reference, prefix: str = "") -> list[str]:
  """Dotted names of the fields of `config` that `reference` (configs/default.py) lacks,
  nested groups (noise.*) included; a group given as a plain value is an error."""
  out = []
  for key in config.keys():
    name = prefix + key
    if name in OPEN_GROUPS:
      continue
    if key not in reference:
      out.append(name)
    elif isinstance(reference[key], (ml_collections.ConfigDict, dict)):
      if not isinstance(config[key], (ml_collections.ConfigDict, dict)):
        raise UserError(f"config field {name} must be a group with the fields "
                        f"{sorted(reference[key].keys())}, not {config[key]!r}: see "
                        "configs/default.py")
      out += _unknown_fields(config[key], reference[key], name + ".")
  return out


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `UserError` naming the field and the fix for the first bad value found."""
  # Imported here so that tools needing only RESUMABLE_CHANGES stay light (no JAX).
  from ae_jax.core.metrics import LOSSES  # pylint: disable=import-outside-toplevel
  from configs import default  # pylint: disable=import-outside-toplevel
  reference = default.get_config()
  unknown = _unknown_fields(config, reference)
  if unknown:
    raise UserError(f"unknown config field(s) {unknown}: see configs/default.py "
                    "for the fields there are")
  missing = _unknown_fields(reference, config)
  if missing:
    raise UserError(f"the config lacks field(s) {missing}: build it from configs/default.py's "
                    "get_config(), as configs/dense.py does")

  def need(ok: bool, field: str, what: str):
    if not ok:
      raise UserError(f"bad config value {field}={config_get(config, field)!r}: "
                      f"it must be {what} (--config.{field}=...)")

  def positive_int(field: str, allow_none: bool = False):
    v = config_get(config, field)
    if v is None and allow_none:
      return
    need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, field,
         "a positive integer" + (" or None" if allow_none else ""))
    # Sizes and counts reach the jitted steps as int32 (larger: OverflowError inside jit).
    need(v < 2**31, field, "a positive integer at most 2**31 - 1 (the steps take int32)")

  for group in ("encoder", "decoder"):
    need(isinstance(config[group], (ml_collections.ConfigDict, dict)), group,
         "a group with a `name` and the module's fields")
    need(isinstance(config[group].get("name"), str) and bool(config[group].get("name")),
         f"{group}.name", "a model family ('dense', 'conv', ...) or 'module:Class'")
  need(isinstance(config.loss_weights, (ml_collections.ConfigDict, dict)), "loss_weights",
       "a group of term name -> weight")
  for term, weight in config.loss_weights.items():
    need(isinstance(weight, (int, float)) and not isinstance(weight, bool)
         and (weight == 0 or FLOAT32_MIN_NORMAL <= weight <= FLOAT32_MAX),
         f"loss_weights.{term}", "a number >= 0 that float32 holds: 0, or from 1.2e-38 to "
         "3.4e+38 (the steps weigh in float32)")
  warmup = config.loss_warmup_steps
  need(isinstance(warmup, int) and not isinstance(warmup, bool) and 0 <= warmup < INT32_LIMIT,
       "loss_warmup_steps", "an integer in [0, 2**31) (0 = no warm-up; the steps count in "
       "int32)")
  need(config.dtype in DTYPES, "dtype", f"one of {DTYPES}")
  need(config.loss in LOSSES, "loss", f"one of {LOSSES}")
  positive_int("importance_samples")
  if config.importance_samples > 1:
    _check_importance_sampling(config)
  need(isinstance(config.weight_decay, (ml_collections.ConfigDict, dict)), "weight_decay",
       "a group of model half ('encoder', 'decoder') -> decay")
  for half, decay in config.weight_decay.items():
    if half not in ("encoder", "decoder"):
      raise UserError(f"unknown config field weight_decay.{half}: weight decay is set by half "
                      "of the model, weight_decay.encoder or weight_decay.decoder")
    need(isinstance(decay, (int, float)) and not isinstance(decay, bool)
         and math.isfinite(decay) and decay >= 0, f"weight_decay.{half}", "a number >= 0")
  clip = config.get("grad_clip_norm")
  need(clip is None or (isinstance(clip, (int, float)) and not isinstance(clip, bool)
                        and math.isfinite(clip) and clip > 0), "grad_clip_norm",
       "a number > 0, or None (no clipping)")
  eps = config.get("adam_eps", 1e-8)
  need(isinstance(eps, (int, float)) and not isinstance(eps, bool) and math.isfinite(eps)
       and eps > 0, "adam_eps", "a number > 0 (Adam's epsilon; 1e-8 is optax's default)")
  need(config.input_pipeline in PIPELINES, "input_pipeline", f"one of {PIPELINES}")
  need(isinstance(config.dataset, str) and bool(config.dataset.strip()), "dataset",
       "a tfds dataset name, or folder:DIR for a folder of images")
  need(not config.dataset.startswith("folder:") or bool(config.dataset[7:].strip()),
       "dataset", "folder:DIR with the folder's path after the colon")
  frac = config.test_fraction
  need(isinstance(frac, (int, float)) and not isinstance(frac, bool) and 0 < frac < 1,
       "test_fraction", "a number between 0 and 1 (the share of a folder's images held "
       "out for the test split)")
  positive_int("crop_size", allow_none=True)
  for field in ("num_epochs", "batch_size", "eval_batch_size", "num_images",
                "device_data_mb", "checkpoints_to_keep"):
    positive_int(field)
  for field in ("steps_per_epoch", "eval_examples"):
    positive_int(field, allow_none=True)
  # The picture grid shows the first eval batch's images.
  need(config.num_images <= config.eval_batch_size, "num_images",
       f"at most eval_batch_size ({config.eval_batch_size}): the grid shows the first eval "
       "batch; lower it or raise --config.eval_batch_size")
  need(isinstance(config.steps_per_call, int) and config.steps_per_call >= 0,
       "steps_per_call", "an integer >= 0 (0 = automatic)")
  need(isinstance(config.checkpoint_every_steps, int) and config.checkpoint_every_steps >= 0,
       "checkpoint_every_steps", "an integer >= 0 (0 = at epoch ends only)")
  lr = config.learning_rate
  need(isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0, "learning_rate",
       "a positive number")
  loc, scale = config.noise.loc, config.noise.scale
  need(isinstance(loc, (int, float)) and math.isfinite(loc), "noise.loc", "a finite number")
  need(isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0, "noise.scale",
       "a number >= 0 (0 turns noise off)")
  # The seed is a traced int32 in the steps (one executable for every seed).
  need(isinstance(config.seed, int) and 0 <= config.seed < 2**31, "seed",
       "an integer in [0, 2**31)")


def command_line_overrides(argv: Sequence[str]) -> dict[str, str]:
  """The `--config.<path>=<value>` overrides in `argv` (also `--config.<path> <value>`, and
  a bare `--config.<path>` / `--noconfig.<path>` as 'true' / 'false'): {dotted path: the
  text given}, the last one given winning, as absl's."""
  out = {}
  for i, arg in enumerate(argv):
    m = re.fullmatch(r"--?(no)?config\.([\w.]+)(?:=(.*))?", arg, re.DOTALL)
    if not m:
      continue
    negated, path, value = m.groups()
    if value is None:
      follows = argv[i + 1] if i + 1 < len(argv) else None
      bare = negated or follows is None or follows.startswith("-")
      value = ("false" if negated else "true") if bare else follows
    out.pop(path, None)
    out[path] = value
  return out


def _literal(text: str) -> Any:
  """A command-line value as ml_collections reads a field of unknown type: a Python literal
  where it is one ('8', '(16, 32)', 'true'), else the text itself ('layer'); lists as
  tuples, which its flags can override again."""
  try:
    value = ast.literal_eval(text.capitalize() if text in ("true", "false") else text)
  except (SyntaxError, ValueError):
    return text
  if isinstance(value, list):
    return tuple(value)
  return ml_collections.ConfigDict(value) if isinstance(value, dict) else value


def switch_families(config: ml_collections.ConfigDict, overrides: Mapping[str, str]) -> list[str]:
  """Where `overrides` (`command_line_overrides`) name another family for a model group than
  the config file did (`--config.encoder.name=conv` on configs/dense.py), that group starts
  over as the new family's defaults: its `name` and the fields the same command line gives
  it, which the module then checks; the old family's fields go (the conv encoder takes no
  `latent_dim`). The config stays locked: any other unknown field is still refused. Call it
  on the config file's config, before the overrides are applied (they set the same values
  again). Returns the dotted names of the groups replaced."""
  replaced = []
  names = sorted((p[:-len(".name")] for p in overrides if p.endswith(".name")),
                 key=lambda p: p.count("."))  # an outer group first: it holds the inner
  for group in names:
    parent, _, key = group.rpartition(".")
    holder = _group_at(config, parent) if parent else config
    if (group.split(".")[0] not in MODEL_GROUPS or holder is None
        or not isinstance(holder.get(key), ml_collections.ConfigDict)
        or holder[key].get("name") == overrides[group + ".name"]):
      continue
    fields: dict = {}
    for path, text in overrides.items():
      if path.startswith(group + "."):
        *outer, last = path[len(group) + 1:].split(".")
        at = fields
        for part in outer:
          at = at.setdefault(part, {})
          if not isinstance(at, dict):
            break
        else:
          at[last] = _literal(text)
    was_locked = holder.is_locked
    with holder.unlocked():
      holder[key] = ml_collections.ConfigDict(fields)
    if was_locked:
      holder.lock()
    replaced.append(group)
  return replaced


def add_module_fields(config: ml_collections.ConfigDict,
                      overrides: Mapping[str, str]) -> list[str]:
  """Fields that a model group's module takes but its config file left out (at the module's
  default: `--config.decoder.kernel_init=glorot_uniform` on configs/wae.py, whose decoder
  group lists no kernel_init) join the group with the value the command line gives, so the
  override applies. A field the module does not take is still refused by the locked config.
  Call it after `switch_families`, before the overrides are applied. Returns the dotted
  names of the fields added."""
  from ae_jax.models import registry  # pylint: disable=import-outside-toplevel
  added = []
  for path, text in overrides.items():
    group, _, field = path.rpartition(".")
    holder = _group_at(config, group) if group else None
    if (group.split(".")[0] not in MODEL_GROUPS or holder is None or field in holder
        or not isinstance(holder.get("name"), str)):
      continue
    try:  # nested encoder groups (a codec's analysis, a WAE's net) are encoders too
      cls = registry.resolve(holder["name"], "decoder" if group.startswith("decoder")
                             else "encoder")
    except UserError:  # a group that names no module of that role (a VAE's prior)
      continue
    if field in registry.module_fields(cls):
      was_locked = holder.is_locked
      with holder.unlocked():
        holder[field] = _literal(text)
      if was_locked:
        holder.lock()
      added.append(path)
  return added


def _group_at(config: ml_collections.ConfigDict, dotted: str):
  """The group at `dotted` in `config`, or None where there is none."""
  value = config
  for part in dotted.split("."):
    if not isinstance(value, ml_collections.ConfigDict) or part not in value:
      return None
    value = value[part]
  return value if isinstance(value, ml_collections.ConfigDict) else None


def _check_importance_sampling(config) -> None:
  """importance_samples > 1 averages importance weights p(x, z_k) / q(z_k|x): the loss must
  be a likelihood, and every term an estimate at the draw (not a closed-form KL)."""
  from ae_jax.core.metrics import LIKELIHOODS  # pylint: disable=import-outside-toplevel
  from ae_jax.models import registry  # pylint: disable=import-outside-toplevel
  k = config.importance_samples
  if config.loss not in LIKELIHOODS:
    raise UserError(f"importance_samples={k} weighs draws by p(x|z): the loss must be a "
                    f"likelihood, not {config.loss!r}: set --config.loss=bernoulli or gaussian")
  for role in ("encoder", "decoder"):
    spec = config[role].to_dict() if hasattr(config[role], "to_dict") else dict(config[role])
    hook = getattr(registry.resolve(spec.get("name"), role), "terms_per_draw", None)
    if hook is not None and not hook(spec):
      raise UserError(f"importance_samples={k} needs the KL at each draw, and {role} "
                      f"{spec['name']!r} reports it in closed form: set "
                      f"--config.{role}.kl=sampled")


def config_get(config: ml_collections.ConfigDict, dotted: str):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


def differences(old: dict, new: dict, prefix: str = "", resumable: bool = False) -> list[str]:
  """Dotted names of the fields whose values differ, other than RESUMABLE_CHANGES (with
  `resumable`: only those)."""
  out = []
  for key in sorted(set(old) | set(new)):
    name = prefix + key
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += differences(a, b, name + ".", resumable)
    elif a != b and (name in RESUMABLE_CHANGES) == resumable:
      out.append(name)
  return out


# Fields added after runs were written, with the value that means what those runs did:
# an older config.json reads as if it held them (`upgrade_record`), and the hash of a run's
# config leaves them out at that value (runs.config_hash), so its codes files still decode.
LATER_FIELDS = {"loss_warmup_steps": 0, "importance_samples": 1, "weight_decay": {},
                "crop_size": None, "test_fraction": 0.1, "grad_clip_norm": None,
                "adam_eps": 1e-8}


def upgrade_record(record: dict) -> dict:
  """A run's config.json as today's configs write it. Runs from before the model zoo
  named their model as `model` ('dense' | 'conv') and `latent_dim`: the same modules
  are the `encoder` and `decoder` groups of `lecture_model`, with no loss terms, float32.
  Runs from before a field of LATER_FIELDS (the VAE's loss warm-up, the IWAE's importance
  samples, the RAE's weight decay, folder datasets' crop and test fraction) hold its
  neutral value."""
  if isinstance(record, dict) and "encoder" in record:
    missing = {k: v for k, v in LATER_FIELDS.items() if k not in record}
    return {**record, **missing} if missing else record
  if not isinstance(record, dict) or "encoder" in record or record.get("model") not in (
      "dense", "conv"):
    return record
  record = dict(record)
  for key, value in LATER_FIELDS.items():
    record.setdefault(key, value)
  model, latent_dim = record.pop("model"), record.pop("latent_dim", 64)
  record.update(lecture_model(model, latent_dim))
  record.setdefault("loss_weights", {})
  record.setdefault("dtype", "float32")
  return record


def model_label(record) -> str:
  """A short name of a run's model: 'dense', or 'sparse+dense' where the halves differ."""
  enc, dec = record["encoder"]["name"], record["decoder"]["name"]
  return enc if enc == dec else f"{enc}+{dec}"
