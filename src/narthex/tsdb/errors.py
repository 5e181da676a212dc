"""Per-sample rejection kinds, spelled as Prometheus's storage errors."""

from __future__ import annotations

from dataclasses import dataclass, field

ERR_OUT_OF_ORDER = "out of order sample"
ERR_OUT_OF_BOUNDS = "out of bounds"
ERR_DUPLICATE = "duplicate sample for timestamp"
ERR_TOO_OLD = "too old sample"
ERR_NOT_FOUND = "not found"

KINDS = (ERR_OUT_OF_ORDER, ERR_OUT_OF_BOUNDS, ERR_DUPLICATE, ERR_TOO_OLD, ERR_NOT_FOUND)


class LockError(RuntimeError):
    """The data directory is locked by another process (or another open DB)."""


@dataclass(slots=True)
class CommitResult:
    """What a commit did: samples appended (in order / out of order) and rejections per kind."""

    appended: int = 0
    out_of_order_appended: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())
