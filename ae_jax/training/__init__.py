"""Training: the loop, its pure steps and objective, and everything a run leaves on disk.

    train.py          train_and_evaluate(config, workdir): the epoch loop, resume
    signals.py        SIGTERM / Ctrl-C: a clean stop (a checkpoint); a second: at once
    steps.py          TrainState, the pure jitted train and eval steps
    objectives.py     reconstruction loss + the terms the model reports, weighted
    config_lib.py     config checks (one UserError line per mistake), config records
    workdir.py        config.json, metrics.jsonl, TensorBoard events, the run lock
    checkpoint.py     orbax CheckpointManager items; restore the encoder, decoder or both
    runs.py           a trained run, loaded: its identity, summary, dataset, images
    parallel.py       the device mesh, shardings, jax.distributed
    compile_cache.py  JAX's persistent compilation cache

May import: `ae_jax.core`, `ae_jax.models`, `ae_jax.data`.
"""
