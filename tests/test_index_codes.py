"""Index codes (ae_jax/compression/codes.py 'index'): a VQ-VAE's codebook indices packed at
ceil(log2 K) bits, the codebook in the file; numpy only, no run needed (a trained VQ-VAE's
round trip is in tests/test_families.py)."""
import dataclasses

import numpy as np
import pytest

from ae_jax.compression import codes as codes_file


@pytest.mark.parametrize("k, bits", [(2, 1), (3, 2), (16, 4), (17, 5), (256, 8), (512, 9),
                                     (1000, 10)])
def test_indices_pack_at_ceil_log2_k_bits_and_unpack_exactly(k, bits):
  assert codes_file.index_bits(k) == bits
  idx = np.random.default_rng(k).integers(0, k, (7, 49))
  idx[0, :] = k - 1  # the largest index fits
  packed = codes_file.pack_indices(idx, k)
  assert packed.dtype == np.uint8 and packed.shape == (7, -(-49 * bits // 8))
  np.testing.assert_array_equal(codes_file.unpack_indices(packed, 49, k), idx)
  with pytest.raises(ValueError, match="outside"):
    codes_file.pack_indices(idx + k, k)


def _index_codes(k=5, n=3):
  rng = np.random.default_rng(0)
  codebook = rng.normal(size=(k, 4)).astype(np.float32)
  idx = rng.integers(0, k, (n, 3 * 3))
  return codes_file.Codes(
      values=codes_file.pack_indices(idx, k), quant="index", model="vq+convnet",
      latent_dim=36, code_shape=(3, 3, 4), image_shape=(12, 12, 1),
      run={"workdir": "w", "config_hash": "h", "step": 1}, codebook=codebook), idx


def test_index_codes_file_round_trip_gives_the_codebook_rows_exactly(tmp_path):
  codes, idx = _index_codes()
  blob = codes_file.codes_to_bytes(codes)
  assert blob[7] == codes_file.INDEX_VERSION  # an older reader refuses it by its version
  path = tmp_path / "c.aec"
  path.write_bytes(blob)
  loaded = codes_file.load_codes(str(path))
  assert loaded.quant == "index" and loaded.bytes_per_image == 4  # 9 x 3 bits -> 4 bytes
  np.testing.assert_array_equal(loaded.codebook, codes.codebook)
  np.testing.assert_array_equal(loaded.dequantized(),
                                codes.codebook[idx].reshape(3, 3, 3, 4))


def test_index_codes_that_do_not_fit_together_are_never_written():
  codes, _ = _index_codes(k=5)
  too_big = codes_file.pack_indices(np.full((3, 9), 7), 8)  # 3 bits hold 7, K = 5
  bad = {
      "no codebook": dataclasses.replace(codes, codebook=None),
      "indices beyond": dataclasses.replace(codes, values=too_big),
      "vector size": dataclasses.replace(codes, code_shape=(3, 3, 2), latent_dim=18),
      "width": dataclasses.replace(codes, values=codes.values[:, :2]),
      "codebook on float codes": dataclasses.replace(
          codes, quant="float32", values=np.zeros((3, 36), np.float32)),
  }
  for what, c in bad.items():
    with pytest.raises(ValueError, match="codes not written"):
      codes_file.codes_to_bytes(c)
    assert codes_file.inconsistency(c), what
