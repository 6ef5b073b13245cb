"""The lecture's three autoencoders and the model zoo's deep, sparse and conv_wide in Keras 3,
trained with model.fit (the peer baseline).

  KERAS_BACKEND=tensorflow python benchmarks/peers/keras_ae.py --model conv --epochs 1
  KERAS_BACKEND=jax        python benchmarks/peers/keras_ae.py --model dense --epochs 10
  KERAS_BACKEND=tensorflow python benchmarks/peers/keras_ae.py --model denoise --noise once

The denoising models (denoise, conv_wide) draw their training noise in the model, fresh for
every batch (`AddNoise`, as ae_jax does); `--noise once` adds it to the train split once
before fit instead, as the lecture's code does (`x_train_noisy = ...`, then
`fit(x_train_noisy, x_train)`): no noise work in the step, the same noise every epoch.

Adam 1e-3, binary cross-entropy on sigmoid outputs, the model's batch size (128; deep and
sparse 256, common.BATCH_SIZES), validation on the test split. Prints one JSON line (see
common.py).

Sparse: `activity_regularizer=L1(1e-4)` on the code. Keras 3 (read in 3.15's
keras/src/layers/layer.py, `Layer.__call__`) divides a layer's activity regularization by
the output's batch size (`ops.divide_no_nan(loss, batch_size)`; tf.keras 2 did the same),
so the penalty is 1e-4 x the batch MEAN of each image's sum |code| — ae_jax's term
(configs/sparse.py loss_weights.l1, the encoder's per-image `l1`), not 256x it. The
penalty is added in evaluation too: Keras' val_loss is the objective (reported as
final_val_objective); the reconstruction BCE alone is computed after fit.
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


def deep_autoencoder() -> keras.Model:
  """The Keras blog's deep AE: 784-128-64-32-64-128-784, relu (the code too), sigmoid out;
  222,384 params (configs/deep.py)."""
  x = inputs = keras.Input((784,))
  for units in (128, 64):
    x = layers.Dense(units, activation="relu")(x)
  x = layers.Dense(32, activation="relu", name="latent_vector")(x)
  for units in (64, 128):
    x = layers.Dense(units, activation="relu")(x)
  return keras.Model(inputs, layers.Dense(784, activation="sigmoid")(x), name="deep_ae")


def sparse_autoencoder() -> keras.Model:
  """The Keras blog's sparse AE: Dense(32, relu) code with an L1 activity penalty (see the
  module docstring), Dense(784, sigmoid); 50,992 params (configs/sparse.py)."""
  x = keras.Input((784,))
  code = layers.Dense(32, activation="relu", name="latent_vector",
                      activity_regularizer=keras.regularizers.L1(common.L1_WEIGHT))(x)
  return keras.Model(x, layers.Dense(784, activation="sigmoid")(code), name="sparse_ae")


def conv_wide_autoencoder(seed: int = 0, noise: bool = True) -> keras.Model:
  """configs/conv_wide.py (ae_jax/models/convnet.py): noise, 3 stride-2 'same' convs
  16-32-64 + relu, a linear conv to 8 channels (code 4x4x8); 3 stages of 2x nearest
  upsampling + conv 64-32-16 + relu, each cropped to the encoder's size at that depth
  (8 -> 7, 14, 28), then a conv to 1 channel, sigmoid; 55,817 params."""
  x = inputs = keras.Input((28, 28, 1))
  if noise:
    x = AddNoise(common.NOISE_LOC, common.NOISE_SCALE, seed)(x)
  sizes = [28]
  for f in (16, 32, 64):
    x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    sizes.append(-(-sizes[-1] // 2))  # 28 -> 14 -> 7 -> 4
  x = layers.Conv2D(8, 3, padding="same")(x)
  for f, size in zip((64, 32, 16), sizes[-2::-1]):  # to 7, 14, 28
    x = layers.Conv2D(f, 3, padding="same", activation="relu")(layers.UpSampling2D(2)(x))
    extra = x.shape[1] - size
    if extra:
      x = layers.Cropping2D(((0, extra), (0, extra)))(x)  # keep the top-left, as ae_jax
  return keras.Model(inputs, layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x),
                     name="conv_wide_ae")


def build(model: str, seed: int, noise_in_model: bool = True) -> keras.Model:
  """`model`'s Keras network; a NOISY model draws its training noise in it unless
  `noise_in_model` is False (the noise is then in its training inputs: --noise once)."""
  if model == "dense":
    return dense_autoencoder()
  if model in ("conv", "denoise"):
    return conv_autoencoder(noise=model == "denoise" and noise_in_model, seed=seed)
  return {"deep": deep_autoencoder, "sparse": sparse_autoencoder,
          "conv_wide": lambda: conv_wide_autoencoder(seed, noise_in_model)}[model]()


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
  args = common.parse_args(__doc__.splitlines()[0], noise_option=True)
  keras.utils.set_random_seed(args.seed)
  data = common.load_fashion_mnist()
  batch = common.batch_size(args.model)
  steps = common.steps_per_epoch(len(data["x_train"]), args.steps_per_epoch, batch)
  x_train = data["x_train"][:steps * batch]  # whole batches only, as ae_jax
  x_test = data["x_test"]
  once = args.noise == "once" and args.model in common.NOISY
  model = build(args.model, args.seed, noise_in_model=not once)
  if len(model.inputs[0].shape) == 2:  # the dense models
    x_train, x_test = x_train.reshape(-1, 784), x_test.reshape(-1, 784)
  # --noise once: the lecture's noisy copy of the train split, drawn before fit (not timed)
  x_input = common.noisy_copy(x_train, args.seed + 1) if once else x_train
  x_val = common.noisy_copy(x_test, args.seed) if args.model in common.NOISY else x_test
  model.compile(optimizer=keras.optimizers.Adam(common.LEARNING_RATE),
                loss="binary_crossentropy")
  timer = EpochTimer()
  history = model.fit(x_input, x_train, batch_size=batch, epochs=args.epochs,
                      shuffle=True, validation_data=(x_val, x_test),
                      validation_batch_size=common.EVAL_BATCH_SIZE, callbacks=[timer],
                      verbose=0)
  val_loss, objective = history.history["val_loss"][-1], None
  if args.model == "sparse":  # val_loss holds the penalty: the BCE alone
    objective = val_loss
    restored = model.predict(x_val, batch_size=common.EVAL_BATCH_SIZE, verbose=0)
    val_loss = float(ops.mean(keras.losses.binary_crossentropy(x_test, restored)))
  num_params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
  common.emit(common.result(
      framework=f"keras-{keras.backend.backend()}" + ("-noise-once" if once else ""),
      model=args.model,
      epoch_seconds=timer.seconds, final_val_loss=val_loss, final_val_objective=objective,
      num_params=num_params, steps=steps, setup_seconds=timer.setup_seconds))


if __name__ == "__main__":
  main()
