"""Reading a space file (`space.py` shows its layout): YAML → a checked `SearchSpace`.

Every value is checked by the class that will use it (`NavPolicyConfig`, `TrainConfig`,
`AugmentConfig.scaled`, the shift parser), so the rules live in one place; a problem is one
`ValueError` line naming the file and the key (`configs/x.yaml: search.lr: ...`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgeliquid.model.cfc import MODES
from edgeliquid.model.policy import ARCHS, NavPolicyConfig, is_int, is_number
from edgeliquid.training.augment import AugmentConfig
from edgeliquid.training.config import TrainConfig
from edgeliquid.tune.space import (
    SEARCHABLE,
    SHIPPED,
    SHIPPED_HEAD,
    ConvHead,
    Dimension,
    EvalPlan,
    LatencyPlan,
    SearchSpace,
    StudyPlan,
    TrainBudget,
    checked,
)


def _known(where: str, mapping: Any, known: Any) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where}: expected a mapping of keys to values, got {mapping!r}")
    unknown = sorted(map(str, set(mapping) - set(known)))
    if unknown:
        label = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ValueError(f"unknown key {label!r}; known: {', '.join(known)}")
    return mapping


def _dimension(name: str, spec: Any, heads: dict[str, ConvHead]) -> Dimension:
    """One `search` entry, its values checked by the class that will use them."""
    where, kind = f"search.{name}", SEARCHABLE[name][2]
    fits = {"name": lambda v: isinstance(v, str), "int": is_int, "float": is_number}[kind]
    need = {"name": "names", "int": "integers", "float": "numbers"}[kind]
    if isinstance(spec, dict):
        _known(where, spec, ("low", "high", "log"))
        if kind == "name":
            raise ValueError(f"{where}: takes names, not a range: give a list")
        if "low" not in spec or "high" not in spec:
            raise ValueError(f"{where}: a range needs both low and high, got {spec}")
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        if not (fits(low) and fits(high)) or not isinstance(log, bool):
            raise ValueError(f"{where}: low and high must be {need} and log true or false")
        if not low < high or (log and low <= 0):
            raise ValueError(f"{where}: need low < high (and low > 0 with log), got {spec}")
        dim = Dimension(name, low=low, high=high, log=log, integer=kind == "int")
    else:
        choices = tuple(spec) if isinstance(spec, list) else (spec,)
        if not choices or len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}: a list needs distinct values, got {spec!r}")
        if not all(map(fits, choices)):
            raise ValueError(f"{where}: values must be {need}, got {spec!r}")
        dim = Dimension(name, choices=choices, integer=kind == "int")
    for value in dim.values_to_check():
        _check_value(where, name, value, heads)
    return dim


def _check_value(where: str, name: str, value: Any, heads: dict[str, ConvHead]) -> None:
    target = SEARCHABLE[name][1]
    if name == "arch" and value not in ARCHS:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(ARCHS)}")
    if name == "cfc_mode" and value not in MODES:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(MODES)}")
    if target == "head" and value not in heads:
        raise ValueError(f"{where}: no conv head {value!r} in conv_heads ({', '.join(heads)})")
    if target == "model":
        checked(where, lambda: NavPolicyConfig(**{name: value}))
    elif target == "train" and name != "arch":
        checked(where, lambda: TrainConfig(**{name: value}))
    elif target == "augment":
        checked(where, lambda: AugmentConfig.scaled(value))


def _conv_heads(spec: Any) -> dict[str, ConvHead]:
    heads = {SHIPPED_HEAD: SHIPPED}
    if not isinstance(spec or {}, dict):
        raise ValueError(f"conv_heads: a mapping of names to heads, got {spec!r}")
    for name, head in (spec or {}).items():
        where = f"conv_heads.{name}"
        _known(where, head, ("channels", "kernels", "strides"))
        lists = [head.get(k) for k in ("channels", "kernels", "strides")]
        if not all(isinstance(v, list) for v in lists):
            raise ValueError(f"{where}: needs channels, kernels and strides, each a list")
        parsed = ConvHead(*(tuple(v) for v in lists))
        # its shape here (at the smallest frame); its size against the data's: check_frames
        checked(
            where,
            lambda p=parsed: NavPolicyConfig(input_height=16, input_width=16, **p.model_fields()),
        )
        heads[str(name)] = parsed
    return heads


def _section(name: str, cls: Any, spec: Any) -> Any:
    """A plain section (`train`, `eval`, ...) as its dataclass; lists become tuples."""
    known = [f.name for f in dataclasses.fields(cls)]
    values = dict(_known(name, spec or {}, known))
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    return checked(name, lambda: cls(**values))


def _train_budget(spec: Any) -> TrainBudget:
    spec = dict(spec or {})
    seeds = spec.get("seeds", [0])
    if is_int(seeds) and seeds >= 1:
        spec["seeds"] = list(range(seeds))
    elif not (
        isinstance(seeds, list)
        and seeds
        and all(is_int(s) and s >= 0 for s in seeds)
        and len(set(seeds)) == len(seeds)
    ):
        raise ValueError(
            f"train.seeds: a count >= 1 or a list of distinct seeds >= 0, got {seeds!r}"
        )
    budget = _section("train", TrainBudget, spec)
    fields = {k: v for k, v in dataclasses.asdict(budget).items() if k != "seeds"}
    checked("train", lambda: TrainConfig(**fields))
    return budget


def _minimums(where: str, plan: Any, minimums: dict[str, int]) -> None:
    for name, low in minimums.items():
        value = getattr(plan, name)
        if not is_int(value) or value < low:
            raise ValueError(f"{where}.{name} must be an integer >= {low}, got {value!r}")


def _eval_plan(spec: Any) -> EvalPlan:
    from edgeliquid.sim.shifts import parse_shift

    plan = _section("eval", EvalPlan, spec)
    if not plan.shifts or not all(isinstance(s, str) for s in plan.shifts):
        raise ValueError(f"eval.shifts: a list of shift names, got {plan.shifts!r}")
    for shift in plan.shifts:
        checked("eval.shifts", lambda s=shift: parse_shift(s))
    _minimums("eval", plan, {"episodes": 1, "seed": 0})
    return plan


def _latency_plan(spec: Any) -> LatencyPlan:
    plan = _section("latency", LatencyPlan, spec)
    _minimums("latency", plan, {"warmup": 0, "steps": 10})
    return plan


def _study_plan(spec: Any) -> StudyPlan:
    plan = _section("study", StudyPlan, spec)
    _minimums("study", plan, {"seed": 0, "cpus_per_trial": 1})
    if not (is_number(plan.gpus_per_trial) and plan.gpus_per_trial >= 0):
        raise ValueError(f"study.gpus_per_trial must be >= 0, got {plan.gpus_per_trial!r}")
    return plan


SECTIONS = ("search", "conv_heads", "train", "eval", "latency", "study")


def parse_space(document: Any) -> SearchSpace:
    """A parsed YAML document as a SearchSpace; ValueError (one line) on the first problem."""
    if document is None:
        raise ValueError("the space file is empty")
    _known("", document, SECTIONS)
    search = _known("search", document.get("search") or {}, tuple(SEARCHABLE))
    if not search:
        raise ValueError("search: nothing to search (give at least one key)")
    heads = _conv_heads(document.get("conv_heads"))
    dimensions = tuple(_dimension(str(name), spec, heads) for name, spec in search.items())
    return SearchSpace(
        dimensions=dimensions,
        conv_heads=heads,
        train=_train_budget(document.get("train")),
        eval=_eval_plan(document.get("eval")),
        latency=_latency_plan(document.get("latency")),
        study=_study_plan(document.get("study")),
    )


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a space file; ValueError naming the file and the problem."""
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{path}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    try:
        return parse_space(document)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
