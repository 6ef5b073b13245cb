"""The mean-scale hyperprior (configs/hyperprior.py) for photographs: RGB, four stride-2
levels in g_a and g_s as the field's (y is 16x smaller per side; CompressAI's
`mbt2018-mean` at N=64, M=96 rather than its 128/192, for this machine's CPU time), trained
on random 128 x 128 crops, 8 per batch, with CompressAI's lambda (the rate weight counts
the crop's pixels); evaluated on whole images of any size.

The dataset is a folder (README "Your own images"): scripts/photographs.py prepares the
one of docs/compression.md (Debian's mate-backgrounds photographs to train, scikit-image's
to test). One point of the curve (lambda after the colon; default 0.0067):
    python scripts/photographs.py --out ~/data/photographs
    python launch.py --config configs/hyperprior_photo.py:0.0067 \
        --config.dataset=folder:$HOME/data/photographs --workdir runs/photo/0.0067
The whole curve against JPEG, WebP and AVIF files: bash scripts/photo_results.sh.
"""
from configs import codec, hyperprior

LAMBDAS = (0.0018, 0.0067, 0.025, 0.0932)  # CompressAI's qualities 1, 3, 5, 7
CROP = 128


def get_config(lmbda: str = "0.0067"):
  config = hyperprior.get_config()
  config.dataset = "folder:~/data/photographs"
  config.crop_size = CROP
  config.encoder.analysis.levels = 4
  config.decoder.levels = 4
  lam = codec.parse_lambda(lmbda, "hyperprior_photo")
  config.loss_weights.rate = codec.rate_weight(lam, CROP * CROP)
  codec.compressai_optimizer(config, lam)
  config.batch_size = 8
  config.num_epochs = 40  # of 43 steps (350 tiles / 8)
  config.eval_examples = 2  # astronaut, chelsea each epoch; the curve: rate_distortion --whole
  return config
