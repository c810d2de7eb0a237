"""Training (torch): `collect` expert episodes, `windows` for truncated BPTT, `augment` per
sequence, `config` (TrainConfig), `trainer` (the fit loop, checkpoints) and `records`
(metrics.json, curves.png, the machine line)."""
