"""The on-device runtime: ONNX policy engine, frame sources, command sinks, the daemon.

Nothing under this package imports torch (a test enforces it): the device needs only numpy,
onnxruntime and OpenCV.
"""
