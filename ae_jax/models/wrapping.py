"""Encoders built around another encoder that a config group names (the codecs' `analysis`,
the regularized encoders' `net`): building it with the wrapper's image shape and dtype,
and asking it how the train steps run."""
from __future__ import annotations

from typing import Mapping

import flax.linen as nn
import jax.numpy as jnp

from ae_jax.models import checks


class WrapsEncoder:
  """A mixin for an encoder whose field named by INNER is another encoder's config group."""
  INNER = "analysis"

  def check_inner_group(self, example: str) -> None:
    """Refuses an INNER field that is not an encoder config group with a name (`example`:
    one that is, for the message)."""
    group = getattr(self, self.INNER)
    if not isinstance(group, Mapping) or "name" not in group:
      raise checks.BadField(self.INNER, f"an encoder config group with a name, e.g. {example}")

  def build_inner(self, detached: bool = False) -> nn.Module:
    """The inner encoder (`detached`: outside any parent, to check its group at start-up)."""
    from ae_jax.models import registry  # pylint: disable=import-outside-toplevel  (cycle)
    dtype = "bfloat16" if self.dtype == jnp.bfloat16 else "float32"
    return registry.build(getattr(self, self.INNER), "encoder", self.image_shape, dtype,
                          role_label=f"encoder.{self.INNER}", detached=detached)

  @classmethod
  def scan_on_cpu(cls, spec: Mapping) -> bool:
    """Whether the train steps run in a scan on CPU: as the inner encoder's."""
    from ae_jax.models import registry  # pylint: disable=import-outside-toplevel
    return registry.scans_on_cpu(spec[cls.INNER], "encoder")
