"""Defaults shared by every experiment; each configs/<name>.py starts from these."""
import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # The model: an encoder and a decoder, each a family name (ae_jax/models/registry.py)
  # or 'module:Class' of your own, with its module's fields (README "Add your own model").
  config.encoder = ml_collections.ConfigDict({"name": "dense", "latent_dim": 64})
  config.decoder = ml_collections.ConfigDict({"name": "dense"})
  # The objective: the reconstruction loss plus the terms the model reports, each times
  # its weight here (a term left out weighs 1), e.g. loss_weights.l1 for configs/sparse.py.
  # 'bce' (from logits) or 'mse', means per pixel (the lecture's); or a likelihood -log p(x|z)
  # in nats per image, summed over pixels: 'bernoulli' (summed BCE) or 'gaussian' (unit
  # variance), for VAEs (configs/vae.py; ae_jax/core/metrics.py).
  config.loss = "bce"
  config.loss_weights = ml_collections.ConfigDict()
  # Warm-up: every term weight rises linearly from 0 to its value over the first N train
  # steps (a VAE's KL warm-up), computed from the step (resumes stay exact). 0 = none.
  config.loss_warmup_steps = 0
  # Draws per image whose importance weights the objective averages: K > 1 trains on the
  # K-sample bound -log mean_k w_k (IWAE, configs/iwae.py; ae_jax/training/objectives.py).
  config.importance_samples = 1
  # Weight decay (L2, added to the gradient before Adam: torch Adam's `weight_decay`) by
  # half of the model: weight_decay.decoder for the RAE's (configs/rae.py). Empty = none.
  config.weight_decay = ml_collections.ConfigDict()
  # Compute dtype of every layer; parameters and optimizer state stay float32.
  config.dtype = "float32"  # 'float32' or 'bfloat16'

  # A tfds dataset of uint8 images by name, or 'folder:DIR', your own images (PNG, JPEG,
  # WebP; README "Your own images"); data.from_arrays(train, test) gives one for numpy arrays.
  config.dataset = "fashion_mnist"
  config.data_dir = config_dict.placeholder(str)  # tfds data_dir; None = tfds' default
  config.idx_dir = "/usr/share/datasets/fashion-mnist"  # local IDX files for (fashion_)mnist
  # A folder without train/ and test/ subfolders: the share of its images held out for
  # the test split (chosen by a hash of each file's path: stable as files come and go).
  config.test_fraction = 0.1
  # Train on random crop_size x crop_size crops (drawn from (seed, step), like the noise):
  # for images of several sizes, or larger than the model should see. None = whole images
  # (they must all have one size). Evaluation: see README "Your own images".
  config.crop_size = config_dict.placeholder(int)
  config.train_split = "train"
  config.eval_split = "test"
  # 'device': the split held in memory, batches gathered and noised inside jit;
  # 'stream': tf.data streams batches; 'auto': device when the split fits in device_data_mb.
  config.input_pipeline = "auto"
  config.device_data_mb = 2048
  # Train steps per jit call on the device pipeline (lax.scan); 0 = per model (see train.py).
  config.steps_per_call = 0

  config.learning_rate = 1e-3
  # Clip each gradient to this global norm before Adam (optax.clip_by_global_norm; torch's
  # clip_grad_norm_, CompressAI's example trainer's 1.0). None = no clipping.
  config.grad_clip_norm = config_dict.placeholder(float)
  # Adam's epsilon, added to the root of its second moment: it matters where gradients are
  # tiny, as for a loss divided by a large constant (the codecs' loss is CompressAI's over
  # lambda 255^2: configs/hyperprior.py scales both this and the clip by that factor).
  config.adam_eps = 1e-8
  config.num_epochs = 10
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.steps_per_epoch = config_dict.placeholder(int)  # None = the whole split
  config.eval_examples = config_dict.placeholder(int)  # None = the whole eval split
  config.seed = 0

  config.noise = ml_collections.ConfigDict()
  config.noise.loc = 0.5  # mean of the Gaussian noise added to the input
  config.noise.scale = 0.0  # its std; 0 = no noise

  config.checkpoint_every_steps = 0  # also save every N steps (0 = at epoch ends only)
  config.checkpoints_to_keep = 3  # newest checkpoints kept in WORKDIR/checkpoints
  config.num_images = 10  # columns of the picture grids
  config.progress_bar = True  # a tqdm bar per epoch, drawn only when stderr is a terminal
  return config
