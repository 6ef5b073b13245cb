"""The learned codec of configs/codec.py, wider and trained longer: MLP 784-1024 -> a
128-value code -> 1024-784, 30 epochs (~10 s an epoch on the 2-core Xeon machine). The
10-epoch configs/codec.py is the side-by-side with CompressAI (same epochs); this one is
the quality the architecture reaches (docs/compression.md, "The learned codec").

    python launch.py --config configs/codec_wide.py:0.05 --workdir runs/codec_wide/0.05
"""
from configs import codec

LAMBDAS = (0.0018, 0.0067, 0.02, 0.05)


def get_config(lmbda: str = "0.05"):
  config = codec.get_config(lmbda)
  config.encoder.analysis.hidden = (1024,)
  config.encoder.analysis.latent_dim = 128
  config.decoder.hidden = (1024,)
  config.num_epochs = 30
  return config
