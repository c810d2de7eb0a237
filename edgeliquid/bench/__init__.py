"""Latency benchmark: `report` runs every row and renders the table; `rows` runs one row per
subprocess (torch, ncps, LTC, ONNX graphs, engine, daemon loop, the sgemm floor)."""
