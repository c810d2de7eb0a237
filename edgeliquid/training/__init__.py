"""Training (torch): `collect` expert episodes, `windows` for truncated BPTT, `augment` per
sequence, `config` (TrainConfig) and `trainer` (the fit loop, checkpoints, curves)."""
