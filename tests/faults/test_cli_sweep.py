"""Issue 10, done-when 3: every subcommand that writes an output, given an output path that is
(a) an existing file of another kind, (b) a path under a file, or (c) a folder where a file
belongs (for folder outputs: a folder holding another kind of file under an output's name),
fails with one stderr line, exit != 0, no traceback, the existing file unchanged, and before
any work (the work functions are replaced by ones that fail the test if called).

`run --sink csv:` and `run --record` are swept here too (the daemon's own fault tests cover
their other cases: the model as its own sink, --overwrite, a locked or unwritable folder).
"""

from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]

from edgeliquid.cli import app  # noqa: E402

runner = CliRunner()
PRECIOUS = b"my notes: not an edgeliquid output\n"
BENCH_JSON = REPO / "docs" / "bench" / "bench.json"
SHIPPED = str(REPO / "models" / "nav_cfc.onnx")
RUN = ["run", SHIPPED, "--source", "sim", "--duration", "0.3"]


def no_work(*args, **kwargs):
    raise AssertionError("the command started its work before checking its output path")


# command name → (argv with {out} for the output path, output suffix, work functions to block)
FILE_OUTPUTS = {
    "eval --json": (
        ["eval", "expert", "--episodes", "1", "--json", "{out}"],
        ".json",
        ["edgeliquid.evaluate.evaluate"],
    ),
    "export -o": (
        ["export", "{ckpt}", "-o", "{out}"],
        ".onnx",
        ["edgeliquid.model.checkpoint.load_checkpoint"],
    ),
    "export -o --quantize": (
        ["export", "{ckpt}", "-o", "{out}", "--quantize", "int8"],
        ".onnx",
        ["edgeliquid.model.checkpoint.load_checkpoint"],
    ),
    "sim preview -o": (
        ["sim", "preview", "-o", "{out}", "--shift", "none", "--seeds", "1"],
        ".png",
        ["edgeliquid.sim.preview.contact_sheet"],
    ),
    "sim bench --json": (
        ["sim", "bench", "--frames", "10", "--json", "{out}"],
        ".json",
        ["edgeliquid.sim.preview.benchmark"],
    ),
    "bench --json": (
        ["bench", "--from-json", str(BENCH_JSON), "--json", "{out}"],
        ".json",
        ["edgeliquid.bench.report.load_result", "edgeliquid.bench.report.run_bench"],
    ),
    "bench --markdown": (
        ["bench", "--from-json", str(BENCH_JSON), "--markdown", "{out}"],
        ".md",
        ["edgeliquid.bench.report.load_result", "edgeliquid.bench.report.run_bench"],
    ),
    "bench --plot": (
        ["bench", "--quick", "--plot", "{out}"],
        ".png",
        ["edgeliquid.bench.report.load_result", "edgeliquid.bench.report.run_bench"],
    ),
    "run --sink csv:": (
        [*RUN, "--sink", "csv:{out}"],
        ".csv",
        ["edgeliquid.runtime.daemon.Daemon.run"],
    ),
}
DIR_OUTPUTS = {  # folder outputs; the file inside that case (c) plants under an output's name
    "collect --out": (
        ["collect", "--out", "{out}", "--episodes", "1", "--height", "18", "--width", "32"],
        "manifest.json",
        ["edgeliquid.training.collect.record_episode"],
    ),
    "train --out": (
        ["train", "{data}", "--out", "{out}", "--epochs", "1"],
        "best.pt",
        ["edgeliquid.training.trainer.train"],
    ),
    "demo --out": (
        ["demo", "--out", "{out}", "--episodes", "1"],
        "summary.json",
        ["edgeliquid.demo.OnnxPolicy"],
    ),
    "bench --workdir": (
        ["bench", "--quick", "--workdir", "{out}"],
        None,
        ["edgeliquid.bench.report.run_bench"],
    ),
    "run --record": (
        [*RUN, "--sink", "null", "--record", "{out}"],
        None,
        ["edgeliquid.runtime.daemon.Daemon.run"],
    ),
}


def block(monkeypatch, targets: list[str]) -> None:
    for target in targets:
        monkeypatch.setattr(target, no_work)


def invoke(argv: list[str], tmp_path: Path, out: Path):
    names = {"out": str(out), "ckpt": str(tmp_path / "c.pt"), "data": str(tmp_path / "data")}
    return runner.invoke(app, [arg.format(**names) for arg in argv])


def assert_refused(result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )  # an uncaught exception (e.g. the blocked work running) is a traceback for a user
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeliquid: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("name", FILE_OUTPUTS)
@pytest.mark.parametrize("case", ["existing file", "under a file", "a folder"])
def test_file_outputs(tmp_path, monkeypatch, name, case):
    argv, suffix, work = FILE_OUTPUTS[name]
    block(monkeypatch, work)
    existing = tmp_path / f"notes{suffix}"
    existing.write_bytes(PRECIOUS)
    if case == "existing file":
        out = existing
    elif case == "under a file":
        out = existing / f"x{suffix}"
    else:
        out = tmp_path / f"folder{suffix}"
        out.mkdir()
    line = assert_refused(invoke(argv, tmp_path, out))
    assert str(out) in line
    assert existing.read_bytes() == PRECIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [existing.name] + ([out.name] if case == "a folder" else [])
    )


@pytest.mark.parametrize("name", DIR_OUTPUTS)
@pytest.mark.parametrize("case", ["existing file", "under a file", "foreign file inside"])
def test_folder_outputs(tmp_path, monkeypatch, name, case):
    argv, inside, work = DIR_OUTPUTS[name]
    if inside is None and case == "foreign file inside":
        pytest.skip(f"{name} writes only its own files into an existing folder")
    block(monkeypatch, work)
    (tmp_path / "data").mkdir()  # train's input: never read, the check comes first
    existing = tmp_path / "notes.txt"
    existing.write_bytes(PRECIOUS)
    if case == "existing file":
        out = existing
    elif case == "under a file":
        out = existing / "run"
    else:
        out = tmp_path / "run"
        out.mkdir()
        existing = out / inside
        existing.write_bytes(PRECIOUS)
    line = assert_refused(invoke(argv, tmp_path, out))
    assert str(out) in line
    assert existing.read_bytes() == PRECIOUS


@pytest.mark.parametrize("name", ["eval --json", "sim bench --json", "sim preview -o"])
def test_an_earlier_output_of_the_same_kind_may_be_replaced(tmp_path, name):
    """The other side of (a): rerunning a command over its own earlier output works."""
    argv, suffix, _ = FILE_OUTPUTS[name]
    out = tmp_path / f"out{suffix}"
    first = invoke(argv, tmp_path, out)
    assert first.exit_code == 0, first.output
    again = invoke(argv, tmp_path, out)
    assert again.exit_code == 0, again.output
