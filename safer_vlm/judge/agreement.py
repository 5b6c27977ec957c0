"""Agreement statistics for binary unsafe flags: confusion counts, accuracy and Cohen's kappa.

Used to compare ensemble members with each other and a judge with human labels (calibration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Confusion:
    """2x2 counts with "unsafe" as the positive class: `a` is the prediction, `b` the reference."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, reference: bool) -> None:
        if predicted and reference:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif reference:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float | None:
        return (self.tp + self.tn) / self.n if self.n else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa; None when undefined (no items, or both sides constant and equal)."""
        n = self.n
        if n == 0:
            return None
        observed = (self.tp + self.tn) / n
        pred_pos = (self.tp + self.fp) / n
        ref_pos = (self.tp + self.fn) / n
        expected = pred_pos * ref_pos + (1 - pred_pos) * (1 - ref_pos)
        if expected >= 1.0:
            return None
        return (observed - expected) / (1 - expected)

    def to_dict(self) -> dict[str, object]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "n": self.n,
            "accuracy": self.accuracy,
            "kappa": self.kappa,
        }


def confusion(predicted: Sequence[bool], reference: Sequence[bool]) -> Confusion:
    """Confusion counts of two equally long flag sequences."""
    if len(predicted) != len(reference):
        raise ValueError(f"length mismatch: {len(predicted)} predictions, {len(reference)} references")
    c = Confusion()
    for p, r in zip(predicted, reference, strict=True):
        c.add(bool(p), bool(r))
    return c


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two raters' binary flags (None when undefined)."""
    return confusion(a, b).kappa


def pairwise_agreement(flags: Sequence[bool]) -> float | None:
    """Share of rater pairs that agree on one item (None with fewer than two raters)."""
    k = len(flags)
    if k < 2:
        return None
    ones = sum(bool(f) for f in flags)
    zeros = k - ones
    pairs = k * (k - 1) / 2
    return (ones * (ones - 1) / 2 + zeros * (zeros - 1) / 2) / pairs
