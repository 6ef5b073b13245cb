"""Evaluation tools on a trained run's code: what a code is worth beyond its bytes.

    likelihood.py  a VAE's importance-sampled negative log-likelihood
    sample.py      samples from the prior, the latent manifold
    density.py     an ex-post Gaussian mixture of a run's codes (the RAE's density)
    code_table.py  what a code is good for: linear probe, k-NN, PSNR, bytes, train time
    latent.py      the codes' PCA map and interpolations
    classifier.py  the small Fashion-MNIST classifier whose features frechet.py uses
    frechet.py     sample quality: the Fréchet distance in those features (not an FID)

May import: every other package (`core`, `models`, `data`, `training`, `compression`).
"""
