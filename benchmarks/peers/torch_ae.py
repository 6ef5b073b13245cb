"""The lecture's three autoencoders in PyTorch (CPU), trained with a plain loop (a peer baseline).

  python benchmarks/peers/torch_ae.py --model conv --epochs 1

Adam 1e-3, binary cross-entropy (from logits), batch 128, whole batches in a fresh random
order each epoch, validation on the test split. Weights start like Keras' (Glorot-uniform
kernels, zero biases). Prints one JSON line (see common.py).
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


def keras_init(model: nn.Module) -> None:
  for m in model.modules():
    if isinstance(m, (nn.Linear, nn.Conv2d)):
      nn.init.xavier_uniform_(m.weight)
      nn.init.zeros_(m.bias)


def add_noise(x: torch.Tensor) -> torch.Tensor:
  return (x + torch.randn_like(x) * common.NOISE_SCALE + common.NOISE_LOC).clamp_(0.0, 1.0)


@torch.no_grad()
def evaluate(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
  model.eval()
  total = 0.0
  for i in range(0, len(inputs), common.EVAL_BATCH_SIZE):
    logits = model(inputs[i:i + common.EVAL_BATCH_SIZE])
    total += F.binary_cross_entropy_with_logits(
        logits, targets[i:i + common.EVAL_BATCH_SIZE], reduction="sum").item()
  model.train()
  return total / targets.numel()


def main() -> None:
  args = common.parse_args(__doc__.splitlines()[0])
  torch.manual_seed(args.seed)
  data = common.load_fashion_mnist()
  # NHWC -> NCHW; the dense model flattens either way.
  x_train = torch.from_numpy(data["x_train"].transpose(0, 3, 1, 2).copy())
  x_test = torch.from_numpy(data["x_test"].transpose(0, 3, 1, 2).copy())
  x_val = x_test
  if args.model == "denoise":
    x_val = torch.from_numpy(common.noisy_copy(data["x_test"], args.seed).transpose(0, 3, 1, 2).copy())
  model = dense_autoencoder() if args.model == "dense" else conv_autoencoder()
  keras_init(model)
  flat = args.model == "dense"
  if flat:
    x_train, x_test, x_val = (t.reshape(len(t), -1) for t in (x_train, x_test, x_val))
  optimizer = torch.optim.Adam(model.parameters(), lr=common.LEARNING_RATE)
  steps = common.steps_per_epoch(len(x_train), args.steps_per_epoch)
  bs = common.BATCH_SIZE

  epoch_seconds, setup_seconds, first_step_seconds = [], common.since_start(), None
  for _ in range(args.epochs):
    t0 = time.perf_counter()
    perm = torch.randperm(len(x_train))
    loss_sum = torch.zeros(())
    for i in range(steps):
      clean = x_train[perm[i * bs:(i + 1) * bs]]
      noisy = add_noise(clean) if args.model == "denoise" else clean
      loss = F.binary_cross_entropy_with_logits(model(noisy), clean)
      optimizer.zero_grad(set_to_none=True)
      loss.backward()
      optimizer.step()
      loss_sum += loss.detach()
      if first_step_seconds is None:  # CPU: the step above has finished
        first_step_seconds = common.since_start()
    float(loss_sum)
    epoch_seconds.append(time.perf_counter() - t0)
    val_loss = evaluate(model, x_val, x_test)

  common.emit(common.result(
      framework="torch", model=args.model, epoch_seconds=epoch_seconds,
      final_val_loss=val_loss, num_params=sum(p.numel() for p in model.parameters()),
      steps=steps, setup_seconds=setup_seconds, first_step_seconds=first_step_seconds))


if __name__ == "__main__":
  main()
