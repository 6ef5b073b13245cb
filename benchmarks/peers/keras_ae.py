"""The lecture's three autoencoders in Keras 3, trained with model.fit (the peer baseline).

  KERAS_BACKEND=tensorflow python benchmarks/peers/keras_ae.py --model conv --epochs 1
  KERAS_BACKEND=jax        python benchmarks/peers/keras_ae.py --model dense --epochs 10

Adam 1e-3, binary cross-entropy on sigmoid outputs, batch 128, validation on the test
split. Prints one JSON line (see common.py).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (starts the process clock)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402


class AddNoise(layers.Layer):
  """x + N(loc, scale^2) clipped to [0, 1], fresh for every training batch; identity otherwise."""

  def __init__(self, loc: float, scale: float, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.loc, self.scale = loc, scale
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, x, training=False):
    if not training:
      return x
    noise = keras.random.normal(ops.shape(x), mean=self.loc, stddev=self.scale,
                                seed=self.seed_generator)
    return ops.clip(x + noise, 0.0, 1.0)


def dense_autoencoder(latent_dim: int = 64) -> keras.Model:
  """784 -> Dense(64, linear, 'latent_vector') -> Dense(784, sigmoid): 101,200 params."""
  x = keras.Input((784,))
  code = layers.Dense(latent_dim, name="latent_vector")(x)
  return keras.Model(x, layers.Dense(784, activation="sigmoid")(code), name="dense_ae")


def conv_autoencoder(noise: bool = False, seed: int = 0) -> keras.Model:
  """The lecture's conv AE (code 4x4x8, 4,385 params); `noise` adds training noise first."""
  def conv(f, act="relu", padding="same"):
    return layers.Conv2D(f, 3, activation=act, padding=padding)

  x = inputs = keras.Input((28, 28, 1))
  if noise:
    x = AddNoise(common.NOISE_LOC, common.NOISE_SCALE, seed)(x)
  for f in (16, 8, 8):
    x = layers.MaxPooling2D(2, padding="same")(conv(f)(x))  # 28 -> 14 -> 7 -> 4
  x = layers.UpSampling2D(2)(conv(8)(x))  # 4 -> 8
  x = layers.UpSampling2D(2)(conv(8)(x))  # 8 -> 16
  x = layers.UpSampling2D(2)(conv(16, padding="valid")(x))  # 16 -> 14 -> 28
  return keras.Model(inputs, conv(1, act="sigmoid")(x), name="conv_ae")


class EpochTimer(keras.callbacks.Callback):
  """Training time of each epoch: epoch begin -> validation begin, once the weights are ready.

  Keras on JAX dispatches steps asynchronously: reading the weights waits for the last one.
  """

  def __init__(self):
    super().__init__()
    self.seconds: list[float] = []
    self.setup_seconds: float | None = None

  def on_epoch_begin(self, epoch, logs=None):
    if self.setup_seconds is None:
      self.setup_seconds = common.since_start()
    self._t0 = time.perf_counter()

  def on_test_begin(self, logs=None):
    for v in self.model.trainable_variables:
      ops.convert_to_numpy(v)
    self.seconds.append(time.perf_counter() - self._t0)


def main() -> None:
  args = common.parse_args(__doc__.splitlines()[0])
  keras.utils.set_random_seed(args.seed)
  data = common.load_fashion_mnist()
  steps = common.steps_per_epoch(len(data["x_train"]), args.steps_per_epoch)
  x_train = data["x_train"][:steps * common.BATCH_SIZE]  # whole batches only, as ae_jax
  x_test = data["x_test"]
  if args.model == "dense":
    model = dense_autoencoder()
    x_train, x_test = x_train.reshape(-1, 784), x_test.reshape(-1, 784)
    x_val = x_test
  else:
    model = conv_autoencoder(noise=args.model == "denoise", seed=args.seed)
    x_val = common.noisy_copy(x_test, args.seed) if args.model == "denoise" else x_test
  model.compile(optimizer=keras.optimizers.Adam(common.LEARNING_RATE),
                loss="binary_crossentropy")
  timer = EpochTimer()
  history = model.fit(x_train, x_train, batch_size=common.BATCH_SIZE, epochs=args.epochs,
                      shuffle=True, validation_data=(x_val, x_test),
                      validation_batch_size=common.EVAL_BATCH_SIZE, callbacks=[timer],
                      verbose=0)
  num_params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
  common.emit(common.result(
      framework=f"keras-{keras.backend.backend()}", model=args.model,
      epoch_seconds=timer.seconds, final_val_loss=history.history["val_loss"][-1],
      num_params=num_params, steps=steps, setup_seconds=timer.setup_seconds))


if __name__ == "__main__":
  main()
