"""Datasets: the SafetySample record, image handling and one adapter per public release."""

from safer_vlm.data.schema import Expected, SafetySample, read_samples, write_samples

__all__ = ["Expected", "SafetySample", "read_samples", "write_samples"]
