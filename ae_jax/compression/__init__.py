"""Compression: a trained run as a codec, the codes file, entropy coding, and how it
compares with classic codecs.

    compress.py        the codec API: encode, decode, check_compatible, save_codes
    compress_cli.py    its command line (python -m ae_jax.compress encode|decode|info)
    codes.py           quantization and the codes file format
    entropy_coding.py  integer probability tables and constriction's range coder
    classic_codecs.py  PNG, JPEG, WebP, AVIF through Pillow; containers.py: RIFF, ISOBMFF
    rate_distortion.py the R-D comparison (python -m ae_jax.rate_distortion)
    rd_compare.py      the comparison's tables; bd_rate.py: Bjøntegaard deltas
    sweep.py           train a code size sweep and measure it
    out_of_domain.py   the codec on images unlike its training data

May import: `ae_jax.core`, `ae_jax.models`, `ae_jax.data`, `ae_jax.training`.
"""
