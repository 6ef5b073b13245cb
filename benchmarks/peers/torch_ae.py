"""The lecture's three autoencoders and the model zoo's deep, sparse and conv_wide in PyTorch
(CPU), trained with a plain loop (a peer baseline).

  python benchmarks/peers/torch_ae.py --model conv --epochs 1

Adam 1e-3, binary cross-entropy (from logits), the model's batch size (128; deep and sparse
256), whole batches in a fresh random order each epoch, validation on the test split.
Weights start like Keras' (Glorot-uniform kernels, zero biases). Sparse adds ae_jax's
penalty, 1e-4 x the batch mean of each image's sum |code| (Keras 3's L1 activity
regularizer divided by the batch size, keras_ae.py). Prints one JSON line (see common.py).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (starts the process clock)

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


def dense_autoencoder(latent_dim: int = 64) -> nn.Module:
  """784 -> Linear(64) -> Linear(784) logits: 101,200 params."""
  return nn.Sequential(nn.Flatten(), nn.Linear(784, latent_dim), nn.Linear(latent_dim, 784))


def conv_autoencoder() -> nn.Module:
  """The lecture's conv AE on NCHW images (code 8x4x4, 4,385 params), logits out."""
  def conv(cin, cout, padding=1):
    return [nn.Conv2d(cin, cout, 3, padding=padding), nn.ReLU()]

  pool = lambda: nn.MaxPool2d(2, ceil_mode=True)  # Keras' padding='same': 7 -> 4
  up = lambda: nn.Upsample(scale_factor=2, mode="nearest")
  return nn.Sequential(
      *conv(1, 16), pool(), *conv(16, 8), pool(), *conv(8, 8), pool(),  # 28 -> 14 -> 7 -> 4
      *conv(8, 8), up(), *conv(8, 8), up(),  # 4 -> 8 -> 16
      *conv(8, 16, padding=0), up(),  # 16 -> 14 -> 28
      nn.Conv2d(16, 1, 3, padding=1))


def deep_autoencoder() -> nn.Module:
  """784-128-64-32-64-128-784, relu (the code too), logits out: 222,384 params."""
  sizes = (784, 128, 64, 32, 64, 128)
  hidden = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
  return nn.Sequential(nn.Flatten(), *hidden, nn.Linear(128, 784))


def sparse_autoencoder() -> nn.Sequential:
  """Dense(32, relu) code, Linear(784) logits: 50,992 params. model[:3] is the encoder."""
  return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 784))


class CropTo(nn.Module):
  """Keeps the top-left size x size pixels (ae_jax's convnet decoder crops the same way)."""

  def __init__(self, size: int):
    super().__init__()
    self.size = size

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x[:, :, :self.size, :self.size]


def conv_wide_autoencoder() -> nn.Module:
  """configs/conv_wide.py on NCHW images (code 8x4x4, 55,817 params), logits out.

  The stride-2 convs pad as XLA's and TensorFlow's 'SAME' does: the extra pixel goes at the
  bottom/right (28 and 14: pad (0, 1); 7: (1, 1)), where Conv2d(padding=1) would pad both
  sides and shift the sampling grid by one pixel."""
  enc, sizes, cin = [], [28], 1
  for f in (16, 32, 64):
    n = sizes[-1]
    sizes.append(-(-n // 2))
    pad = max((sizes[-1] - 1) * 2 + 3 - n, 0)
    enc += [nn.ZeroPad2d((pad // 2, pad - pad // 2) * 2), nn.Conv2d(cin, f, 3, stride=2), nn.ReLU()]
    cin = f
  enc.append(nn.Conv2d(cin, 8, 3, padding=1))  # linear: the code
  dec, cin = [], 8
  for f, size in zip((64, 32, 16), sizes[-2::-1]):  # 4 -> 8 cropped to 7 -> 14 -> 28
    dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, f, 3, padding=1),
            CropTo(size), nn.ReLU()]
    cin = f
  return nn.Sequential(*enc, *dec, nn.Conv2d(cin, 1, 3, padding=1))


def build(model: str) -> nn.Module:
  return {"dense": dense_autoencoder, "conv": conv_autoencoder, "denoise": conv_autoencoder,
          "deep": deep_autoencoder, "sparse": sparse_autoencoder,
          "conv_wide": conv_wide_autoencoder}[model]()


def keras_init(model: nn.Module) -> None:
  for m in model.modules():
    if isinstance(m, (nn.Linear, nn.Conv2d)):
      nn.init.xavier_uniform_(m.weight)
      nn.init.zeros_(m.bias)


def add_noise(x: torch.Tensor) -> torch.Tensor:
  return (x + torch.randn_like(x) * common.NOISE_SCALE + common.NOISE_LOC).clamp_(0.0, 1.0)


def objective(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, sparse: bool
              ) -> tuple[torch.Tensor, torch.Tensor]:
  """(mean BCE, mean BCE + the sparse penalty): the penalty is 1e-4 x the batch mean of
  each image's sum |code| (the code is model[:3]'s relu output)."""
  if not sparse:
    bce = F.binary_cross_entropy_with_logits(model(inputs), targets)
    return bce, bce
  code = model[:3](inputs)
  bce = F.binary_cross_entropy_with_logits(model[3:](code), targets)
  return bce, bce + common.L1_WEIGHT * code.abs().sum(dim=1).mean()


@torch.no_grad()
def evaluate(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
             sparse: bool = False) -> tuple[float, float]:
  """(BCE, objective) over the whole split, in batches of EVAL_BATCH_SIZE (all full)."""
  model.eval()
  bce_sum = obj_sum = 0.0
  n = common.EVAL_BATCH_SIZE
  for i in range(0, len(inputs), n):
    bce, obj = objective(model, inputs[i:i + n], targets[i:i + n], sparse)
    bce_sum, obj_sum = bce_sum + bce.item() * n, obj_sum + obj.item() * n
  model.train()
  return bce_sum / len(inputs), obj_sum / len(inputs)


def main() -> None:
  args = common.parse_args(__doc__.splitlines()[0])
  torch.manual_seed(args.seed)
  data = common.load_fashion_mnist()
  # NHWC -> NCHW; the dense model flattens either way.
  x_train = torch.from_numpy(data["x_train"].transpose(0, 3, 1, 2).copy())
  x_test = torch.from_numpy(data["x_test"].transpose(0, 3, 1, 2).copy())
  x_val = x_test
  noisy_input = args.model in common.NOISY
  if noisy_input:
    x_val = torch.from_numpy(common.noisy_copy(data["x_test"], args.seed).transpose(0, 3, 1, 2).copy())
  model = build(args.model)
  keras_init(model)
  sparse = args.model == "sparse"
  if isinstance(model[0], nn.Flatten):  # the dense models
    x_train, x_test, x_val = (t.reshape(len(t), -1) for t in (x_train, x_test, x_val))
  optimizer = torch.optim.Adam(model.parameters(), lr=common.LEARNING_RATE)
  bs = common.batch_size(args.model)
  steps = common.steps_per_epoch(len(x_train), args.steps_per_epoch, bs)

  epoch_seconds, setup_seconds, first_step_seconds = [], common.since_start(), None
  for _ in range(args.epochs):
    t0 = time.perf_counter()
    perm = torch.randperm(len(x_train))
    loss_sum = torch.zeros(())
    for i in range(steps):
      clean = x_train[perm[i * bs:(i + 1) * bs]]
      noisy = add_noise(clean) if noisy_input else clean
      loss = objective(model, noisy, clean, sparse)[1]
      optimizer.zero_grad(set_to_none=True)
      loss.backward()
      optimizer.step()
      loss_sum += loss.detach()
      if first_step_seconds is None:  # CPU: the step above has finished
        first_step_seconds = common.since_start()
    float(loss_sum)
    epoch_seconds.append(time.perf_counter() - t0)
    val_loss, val_objective = evaluate(model, x_val, x_test, sparse)

  common.emit(common.result(
      framework="torch", model=args.model, epoch_seconds=epoch_seconds,
      final_val_loss=val_loss, final_val_objective=val_objective if sparse else None, num_params=sum(p.numel() for p in model.parameters()),
      steps=steps, setup_seconds=setup_seconds, first_step_seconds=first_step_seconds))


if __name__ == "__main__":
  main()
