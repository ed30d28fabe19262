"""Named, independent random streams. Every stochastic part of the simulator draws from its
own stream keyed by (seed, site, purpose), so adding a draw in one part never shifts another,
and the same seed always gives the same history."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *key: str | int) -> np.random.Generator:
    words = [zlib.crc32(str(part).encode()) for part in key]
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *words]))
