"""The denoising train step with its noise drawn flat (ae_jax) or in the image shape.

  python benchmarks/noise_forms.py [--rounds 4] [--calls 60]

`data.add_noise` draws N(loc, scale^2) for the images flattened to [B, H*W*C], then
reshapes: the same numbers bit for bit as drawing in the image shape [B, 28, 28, 1]
(checked here on the trained parameters), but XLA:CPU vectorizes along the last axis,
which the image shape makes 1 wide. For each form, per round: XLA's compile time (after
tracing and lowering) of the denoise config's `steps.device_train_steps` (one step per
call, as a CPU run calls it), each in a fresh process without the persistent cache, the
forms' order alternating by round; then ms per step with the calls
alternating between the two compiled forms (the machine's drift falls on both alike).
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ae_jax import models  # noqa: E402
from ae_jax.data import pipeline as data
from ae_jax.training import steps
from benchmarks.timing import alternating_ms  # noqa: E402
from configs import denoise  # noqa: E402

FLAT = data.add_noise


def image_shaped(key, clean, loc, scale):  # ae_jax's form before
  if scale == 0:
    return clean
  return jnp.clip(clean + (loc + scale * jax.random.normal(key, clean.shape, clean.dtype)),
                  0.0, 1.0)


FORMS = {"ae_jax: noise drawn on [B, 784]": FLAT,
         "image-shaped: noise drawn on [B, 28, 28, 1]": image_shaped}


def _setup():
  config = denoise.get_config()
  model = models.make_autoencoder("conv")
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))
  kw = dict(num_steps=1, batch_size=config.batch_size, seed=0, loc=config.noise.loc,
            scale=config.noise.scale, loss_kind="bce", unroll=1)
  return config, model, images, perm, kw


def compile_seconds(form_index: int) -> float:
  """XLA's compile time of the step with FORMS[form_index], in a fresh process."""
  code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
          f"import noise_forms; noise_forms._child({form_index})")
  env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false")
  done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                        check=True)
  return float(done.stdout.strip().splitlines()[-1])


def _child(form_index: int) -> None:
  data.add_noise = list(FORMS.values())[form_index]
  config, model, images, perm, kw = _setup()
  state = steps.initial_state(model, config, models.IMAGE_SHAPE)
  lowered = steps.device_train_steps.lower(state, images, perm, jnp.int32(0), **kw)
  t0 = time.perf_counter()
  lowered.compile()
  print(time.perf_counter() - t0)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=4)
  parser.add_argument("--calls", type=int, default=60)
  args = parser.parse_args()
  config, model, images, perm, kw = _setup()
  print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; denoise train step, batch "
        f"{config.batch_size}, one step per call; {args.calls} calls per form per round")
  print("\n| round | form | compile s | median ms/step | ratio to ae_jax |\n|---|---|---|---|---|")
  all_secs = {name: [] for name in FORMS}
  try:
    for r in range(1, args.rounds + 1):
      variants, secs = {}, {}
      order = list(enumerate(FORMS.items()))[::1 if r % 2 else -1]  # alternate the order
      for i, (name, form) in order:
        secs[name] = compile_seconds(i)
        all_secs[name].append(secs[name])
        data.add_noise = form
        jax.clear_caches()
        state = steps.initial_state(model, config, models.IMAGE_SHAPE)
        variants[name] = [steps.device_train_steps.lower(
            state, images, perm, jnp.int32(0), **kw).compile(), state]
      times, _ = alternating_ms(
          variants, lambda ex, state, i: ex(state, images, perm, jnp.int32(i), seed=0),
          args.calls)
      a, b = (jax.tree.leaves(state.params) for _, state in variants.values())
      assert all(np.array_equal(x, y) for x, y in zip(a, b)), "the forms trained differently"
      base = float(np.median(times[next(iter(FORMS))]))
      for name in FORMS:
        t = times[name]
        print(f"| {r} | {name} | {secs[name]:.2f} | {np.median(t):.2f} | "
              f"{np.median(t) / base:.2f}x |", flush=True)
  finally:
    data.add_noise = FLAT
  print("\ncompile s, median over the rounds: " + "; ".join(
      f"{name}: {np.median(v):.2f}" for name, v in all_secs.items()))


if __name__ == "__main__":
  main()
