"""How the suite writes a wall time: "48.2 s", "7 min 08.5 s" (ab's summary, the docs' tables)."""

from __future__ import annotations


def minutes_text(seconds: float, decimals: int = 1) -> str:
    """``seconds`` as "S s" under a minute, else "M min SS s"; rounded once, before the split, so that
    479.6 s reads "8 min 00 s", never "7 min 60 s"."""
    seconds = round(float(seconds), decimals)
    if seconds < 60:
        return f"{seconds:.{decimals}f} s"
    whole, rest = divmod(seconds, 60)
    width = 2 + (decimals + 1 if decimals else 0)
    return f"{int(whole)} min {rest:0{width}.{decimals}f} s"
