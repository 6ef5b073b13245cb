"""The foundations every other package of ae_jax imports, and which import nothing of it.

    errors.py    UserError and the one-line endings of every command (run_cli, writing)
    files.py     atomic writes, output checks, PNG folders read and written
    cli.py       what the command lines share: one-line argparse errors, quiet logs, flags
    progress.py  the progress line of long commands
    metrics.py   per-image losses and likelihoods on logits (BCE, MSE, Bernoulli, Gaussian)
    quality.py   image quality of uint8 or [0, 1] pictures: MSE, PSNR, SSIM, BCE
    plots.py     picture grids and loss curves (matplotlib, no pyplot)
    xla_flags.py XLA:CPU defaults applied when ae_jax is imported

May import: nothing of ae_jax outside `core`.
"""
