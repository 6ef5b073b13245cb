"""A small tfds dataset with CIFAR-10's features (32x32x3 uint8 images, 10 labels), built
by a real tfds builder on this machine: CIFAR-10 itself cannot be downloaded here, and
`tfds.testing.mock_data` does not know split sizes without tfds' metadata files, which the
pip package does not ship (ae_jax sizes its in-memory splits from them)."""
import numpy as np
import tensorflow_datasets as tfds


class CifarLike(tfds.core.GeneratorBasedBuilder):
  """Smooth colour gradients with a bright square: 128 train and 64 test images."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(num_classes=10)}),
        supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):  # pylint: disable=unused-argument
    return {"train": self._generate_examples(128, 0), "test": self._generate_examples(64, 1)}

  def _generate_examples(self, n, seed):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, 32)
    for i in range(n):
      colour = rng.uniform(0.2, 1.0, 3)
      image = np.outer(ramp, ramp[::-1])[..., None] * colour * 200
      r, c = rng.integers(0, 24, 2)
      image[r:r + 8, c:c + 8] = 255
      yield i, {"image": image.astype(np.uint8), "label": int(rng.integers(10))}


def prepare(data_dir: str) -> None:
  CifarLike(data_dir=data_dir).download_and_prepare()
