"""Datasets: the SafetySample record, image handling and one adapter per public release."""

from safer_vlm.data.schema import (
    EXPECTED_BEHAVIOURS,
    Behaviour,
    ExpectedBehaviour,
    SafetySample,
    read_samples,
    write_samples,
)

__all__ = ["EXPECTED_BEHAVIOURS", "Behaviour", "ExpectedBehaviour", "SafetySample", "read_samples", "write_samples"]
