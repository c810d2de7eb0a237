"""The daemon's step worker: results, errors and timeouts cross the hand-off intact."""

import threading

import pytest

from edgeliquid.runtime.worker import StepWorker


def test_result_error_and_timeout():
    worker = StepWorker()
    assert worker.submit(lambda a, b: a + b, 2, 3).result(timeout=1.0) == 5

    def boom():
        raise ValueError("bad step")

    with pytest.raises(ValueError, match="bad step"):
        worker.submit(boom).result(timeout=1.0)
    gate = threading.Event()
    job = worker.submit(gate.wait, 5.0)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.01)
    assert not job.done()
    gate.set()
    assert job.result(timeout=1.0) is True and job.done()
    worker.shutdown()
