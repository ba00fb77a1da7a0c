"""Sizes and durations in words people read the same way everywhere (thread, terminal, report)."""

from __future__ import annotations


def size(n: float) -> str:
    """Bytes in binary units, named as such: 512 B, 1.5 KiB, 3.2 MiB, 1.1 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover
