"""configs/vqvae.py's VQ-VAE in PyTorch (CPU), trained with a plain loop (a peer baseline).

  python benchmarks/peers/torch_vqvae.py --model vqvae --epochs 1

The same architecture, objective and codebook updates as ae_jax (ae_jax/models/vq.py on
ae_jax/models/convnet.py), on NCHW images:
  encoder  Conv 3x3 stride 2 to 16, ReLU (28 -> 14), Conv 3x3 stride 2 to 32, ReLU (-> 7),
           both padded as XLA's 'SAME' (the extra row and column at the bottom/right), then
           a linear Conv 3x3 'same' to 16 channels: z_e, 7 x 7 x 16;
  quantize each 16-dim vector to the nearest of 512 codebook rows (squared Euclidean, ties
           to the lower index), straight-through gradient; commitment loss per image, the
           mean over positions and dims of (z_e - sg(e))^2, weight 0.25;
  codebook EMA (Sonnet's VectorQuantizerEMA): N <- 0.99 N + 0.01 n, m <- 0.99 m + 0.01 sum
           of the z_e assigned, e = m / Ñ with Laplace smoothing (eps 1e-5); N starts at 1,
           m at the initial codebook, uniform +-sqrt(3 / 16); a code unused for 100
           consecutive steps restarts at a random z_e of the batch (N = 1, m = that z_e);
  decoder  nearest 2x upsampling + Conv 3x3 'same' to 32 + ReLU (7 -> 14), the same to 16
           (-> 28), Conv 3x3 'same' to 1 channel: logits.
Loss: the per-image mean BCE (from logits) + 0.25 x commitment, averaged over the batch;
Adam 1e-3, batch 128, whole batches in a fresh random order each epoch. Conv weights start
as ae_jax's (Flax's LeCun normal: truncated normal, variance 1 / fan_in), biases at zero.
The EMA update uses the batch's z_e from the forward pass and is applied after Adam's step
(the codebook takes no gradient, as in ae_jax). Validation on the test split: the final val
loss is the BCE (ae_jax's `val_reconstruction`), the objective beside it. Prints one JSON
line (see common.py); 36,241 parameters and codebook statistics, as ae_jax counts them.
"""
from __future__ import annotations

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (starts the process clock)

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

CODE_DIM, CODEBOOK_SIZE = 16, 512
COMMITMENT, DECAY, LAPLACE_EPS, DEAD_AFTER = 0.25, 0.99, 1e-5, 100


def lecun_normal_(weight: torch.Tensor) -> None:
  """Flax's default kernel init: truncated normal (+-2 std) with variance 1 / fan_in."""
  fan_in = weight[0].numel()
  std = math.sqrt(1.0 / fan_in) / .87962566103423978
  nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def same_stride2(cin: int, cout: int, size: int) -> list[nn.Module]:
  """A 3x3 stride-2 conv padded as 'SAME' for a size x size input."""
  out = -(-size // 2)
  pad = max((out - 1) * 2 + 3 - size, 0)
  return [nn.ZeroPad2d((pad // 2, pad - pad // 2) * 2), nn.Conv2d(cin, cout, 3, stride=2)]


class VQVAE(nn.Module):
  def __init__(self):
    super().__init__()
    self.encoder = nn.Sequential(*same_stride2(1, 16, 28), nn.ReLU(),
                                 *same_stride2(16, 32, 14), nn.ReLU(),
                                 nn.Conv2d(32, CODE_DIM, 3, padding=1))
    self.decoder = nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(CODE_DIM, 32, 3, padding=1),
        nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(32, 16, 3, padding=1),
        nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1))
    for m in self.modules():
      if isinstance(m, nn.Conv2d):
        lecun_normal_(m.weight)
        nn.init.zeros_(m.bias)
    bound = math.sqrt(3.0 / CODE_DIM)
    codebook = torch.empty(CODEBOOK_SIZE, CODE_DIM).uniform_(-bound, bound)
    self.register_buffer("codebook", codebook)
    self.register_buffer("ema_cluster_size", torch.ones(CODEBOOK_SIZE))
    self.register_buffer("ema_embed_sum", codebook.clone())
    self.register_buffer("steps_unused", torch.zeros(CODEBOOK_SIZE))

  def nearest(self, z_MxD: torch.Tensor) -> torch.Tensor:
    d = (z_MxD.pow(2).sum(1, keepdim=True) - 2 * z_MxD @ self.codebook.T
         + self.codebook.pow(2).sum(1)[None])
    return d.argmin(1)  # the first minimum: ties go to the lower index

  def forward(self, x: torch.Tensor):
    """(logits, per-image commitment, z_e [M, D] detached, indices [M])."""
    z_e = self.encoder(x)  # B, D, 7, 7
    b = z_e.shape[0]
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, CODE_DIM)
    with torch.no_grad():
      idx = self.nearest(flat)
      e = self.codebook[idx]
    commitment = (flat - e).pow(2).reshape(b, -1).mean(1)
    z_q = flat + (e - flat).detach()  # straight-through: value e, gradient to z_e
    z_q = z_q.reshape(b, *z_e.shape[2:], CODE_DIM).permute(0, 3, 1, 2)
    return self.decoder(z_q), commitment, flat.detach(), idx

  @torch.no_grad()
  def update_codebook(self, z_MxD: torch.Tensor, idx_M: torch.Tensor) -> None:
    counts = torch.bincount(idx_M, minlength=CODEBOOK_SIZE).float()
    unused = torch.where(counts > 0, torch.zeros_like(counts), self.steps_unused + 1)
    dead = unused >= DEAD_AFTER
    restart = z_MxD[torch.randint(0, z_MxD.shape[0], (CODEBOOK_SIZE,))]
    unused = torch.where(dead, torch.zeros_like(unused), unused)
    sums = torch.zeros_like(self.ema_embed_sum).index_add_(0, idx_M, z_MxD)
    cluster = torch.where(dead, torch.ones_like(counts),
                          DECAY * self.ema_cluster_size + (1 - DECAY) * counts)
    embed_sum = torch.where(dead[:, None], restart,
                            DECAY * self.ema_embed_sum + (1 - DECAY) * sums)
    n = cluster.sum()
    smoothed = (cluster + LAPLACE_EPS) / (n + CODEBOOK_SIZE * LAPLACE_EPS) * n
    self.codebook.copy_(embed_sum / smoothed[:, None])
    self.ema_cluster_size.copy_(cluster)
    self.ema_embed_sum.copy_(embed_sum)
    self.steps_unused.copy_(unused)


def objective(model: VQVAE, x: torch.Tensor):
  """(mean BCE, mean objective, z_e, indices) of a batch (input = target)."""
  logits, commitment, z, idx = model(x)
  bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").reshape(len(x), -1)
  bce = bce.mean(1)
  return bce.mean(), (bce + COMMITMENT * commitment).mean(), z, idx


@torch.no_grad()
def evaluate(model: VQVAE, x: torch.Tensor) -> tuple[float, float]:
  """(BCE, objective) over the split, in batches of EVAL_BATCH_SIZE."""
  model.eval()
  n, bce_sum, obj_sum = common.EVAL_BATCH_SIZE, 0.0, 0.0
  for i in range(0, len(x), n):
    bce, obj, _, _ = objective(model, x[i:i + n])
    bce_sum, obj_sum = bce_sum + bce.item() * len(x[i:i + n]), obj_sum + obj.item() * len(x[i:i + n])
  model.train()
  return bce_sum / len(x), obj_sum / len(x)


def main() -> None:
  args = common.parse_args(__doc__.splitlines()[0])
  if args.model != "vqvae":
    raise SystemExit("torch_vqvae.py runs --model vqvae only (torch_ae.py runs the others)")
  torch.manual_seed(args.seed)
  data = common.load_fashion_mnist()
  x_train = torch.from_numpy(data["x_train"].transpose(0, 3, 1, 2).copy())
  x_test = torch.from_numpy(data["x_test"].transpose(0, 3, 1, 2).copy())
  model = VQVAE()
  optimizer = torch.optim.Adam(model.parameters(), lr=common.LEARNING_RATE)
  bs = common.batch_size(args.model)
  steps = common.steps_per_epoch(len(x_train), args.steps_per_epoch, bs)

  epoch_seconds, setup_seconds, first_step_seconds = [], common.since_start(), None
  for _ in range(args.epochs):
    t0 = time.perf_counter()
    perm = torch.randperm(len(x_train))
    loss_sum = torch.zeros(())
    for i in range(steps):
      x = x_train[perm[i * bs:(i + 1) * bs]]
      _, loss, z, idx = objective(model, x)
      optimizer.zero_grad(set_to_none=True)
      loss.backward()
      optimizer.step()
      model.update_codebook(z, idx)
      loss_sum += loss.detach()
      if first_step_seconds is None:
        first_step_seconds = common.since_start()
    float(loss_sum)
    epoch_seconds.append(time.perf_counter() - t0)
    val_loss, val_objective = evaluate(model, x_test)

  num = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
  common.emit(common.result(
      framework="torch", model=args.model, epoch_seconds=epoch_seconds,
      final_val_loss=val_loss, final_val_objective=val_objective, num_params=num, steps=steps,
      setup_seconds=setup_seconds, first_step_seconds=first_step_seconds))


if __name__ == "__main__":
  main()
