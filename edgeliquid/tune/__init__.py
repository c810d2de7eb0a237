"""`edgeliquid tune`: search for the policy on the success × latency front (the `tune` extra).

space (the search space) and spacefile (its YAML) → engine (Ray Tune runs the trials, Optuna's
sampler picks them) → trial (train → export → latency → closed loop, per training seed) →
front (the Pareto front: front.md, front.png, best.onnx). Nothing here is imported by the
runtime; only engine imports Ray, and only when the command runs.
"""
