"""Deployment files: the systemd unit and the Jetson Dockerfile say what the daemon needs."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from onnx_fixtures import write_model

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "scripts" / "edgeliquid.service"
DOCKERFILE = REPO / "Dockerfile.jetson"


def unit_entries() -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def test_unit_is_a_watchdogged_notify_service():
    unit = unit_entries()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["Restart"] == ["on-failure"]
    assert re.fullmatch(r"\d+s", unit["WatchdogSec"][0])
    assert unit["ExecStart"][0].split()[1] == "run"


def test_unit_command_line_is_accepted_by_edgeliquid_run(tmp_path):
    unit = unit_entries()
    env = dict(e.split("=", 1) for e in unit["Environment"])
    env |= {
        "EDGELIQUID_MODEL": str(write_model(tmp_path / "m.onnx")),
        "EDGELIQUID_SOURCE": "sim",
        "EDGELIQUID_SINK": "null",
    }
    argv = shlex.split(unit["ExecStart"][0])
    args = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a) for a in argv[1:]]
    cmd = [sys.executable, "-m", "edgeliquid.cli", *args, "--duration", "0.3"]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, env=os.environ | {"PYTHONPATH": str(REPO)}
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    here = Path(sys.executable).with_name("edgeliquid")  # an executable for ExecStart to name
    text = UNIT.read_text().replace("/opt/edgeliquid/.venv/bin/edgeliquid", str(here))
    (tmp_path / "edgeliquid.service").write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "edgeliquid.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "edgeliquid.service" not in done.stderr, done.stderr


def _hadolint():
    return shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed")
def test_dockerfile_passes_hadolint():
    done = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_jetpack_runtime_without_torch():
    text = DOCKERFILE.read_text()
    assert "ARG L4T_TAG=r36.4.0" in text and "nvcr.io/nvidia/l4t-jetpack:${L4T_TAG}" in text
    assert re.search(r"^ARG ORT_WHEEL_URL=https://\S+onnxruntime_gpu-\S+#sha256=", text, re.M)
    assert '"${ORT_WHEEL_URL}"' in text and "python3-opencv" in text
    assert 'ENTRYPOINT ["edgeliquid", "run"]' in text
    runs = " ".join(line for line in text.splitlines() if line.startswith("RUN"))
    assert "torch" not in runs
