"""Shipped real-data sample (built by ``python -m pipelines.emulator.build_sample``)."""
