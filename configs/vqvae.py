"""VQ-VAE (van den Oord et al. 2017) on Fashion-MNIST: a stride-2 conv encoder (16, 32
channels) to a 7x7 grid of 16-dim vectors, each replaced by the nearest of 512 codebook
vectors (EMA codebook, decay 0.99; codes unused for 100 steps restarted at random encoder
outputs), commitment weight 0.25, the mirrored conv decoder; BCE, Adam 1e-3, batch 128,
5 epochs. Each image's code is 49 indices of 9 bits: 56 bytes with
`python -m ae_jax.compress encode --quant index` (the default for this run).

metrics.jsonl logs train_/val_ commitment, perplexity (of the batch's code histogram)
and usage (the fraction of the 512 codes a batch uses).

Run:   python launch.py --config configs/vqvae.py --workdir runs/vqvae
       python -m ae_jax.rate_distortion --workdir runs/vqvae --out runs/vqvae/rd
Codebook by the loss instead: --config.encoder.codebook_update=loss (it reports `codebook`).
Expect (measured 2026-12-02 on the 2-core Intel Xeon KVM guest, lscpu model 167, AVX-512,
no GPU, shared with other jobs, load average ~5; scripts/vqvae_results.sh): after 5 epochs
val BCE 0.2618, PSNR 22.86 dB, SSIM 0.814, val perplexity 347 of 512 codes, usage 1.0
(0.986 of a train batch's 128 images); the index codes' round trip gives the same 22.86 dB
and SSIM 0.8141 at 56 B/image. Since the splits keep their files' order (2026-12-07, the
same machine at load 12-20): val BCE 0.2620, 22.78 dB, SSIM 0.817, perplexity 357, usage
1.0 (0.986); the round trip 22.78 dB, SSIM 0.8171; 60-70 s an epoch. An epoch took 102-112 s (epochs 2-3 of a 3-epoch run,
peak RSS 693 MiB; 6 min 49 s for that whole command), 218-274 s with tests beside it:
about 10 minutes for the 5 epochs at the former pace.
Results: README "Results" (the command there, the machine named beside the figures).
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict(
      {"name": "vq", "features": (16, 32), "code_dim": 16, "codebook_size": 512,
       "codebook_update": "ema", "ema_decay": 0.99, "dead_code_after": 100,
       "kernel_size": 3, "downsample": "stride", "norm": "none", "activation": "relu"})
  config.decoder = ml_collections.ConfigDict(
      {"name": "convnet", "features": (32, 16), "kernel_size": 3, "upsample": "nearest",
       "norm": "none", "activation": "relu"})
  config.loss_weights.commitment = 0.25
  config.num_epochs = 5
  return config
