"""A per-server cache in front of the `FleetReader`: however many sessions are open, each
query runs at most once per time-to-live, so the warehouse reads stay bounded (20 sessions
polling every 2 s cost what one does). A per-key lock makes sessions that ask at the same
moment wait for one computation instead of all running it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from reporting.fleet import FleetReader

# How stale each kind of read may be, in seconds: the live parts refresh within a tick of the
# simulator's 5-s tick, slow-moving tables (predictions change once per scored hour, the model
# once per promotion) much less often.
TTL = {"live": 2.0, "alerts": 2.0, "status": 4.0, "series": 10.0, "slow": 60.0, "model": 300.0}


class TTLCache:
    def __init__(self) -> None:
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self.computed = 0  # how many times a value was actually computed (for the benchmark)

    def get(self, key: Hashable, ttl: float, compute: Callable[[], Any]) -> Any:
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
            value = compute()
            self.computed += 1
            self._values[key] = (time.monotonic() + ttl, value)
            return value

    def clear(self) -> None:
        """Forget everything (after an action, so the page shows its effect at once)."""
        self._values.clear()


class CachedReader:
    """The reader's queries through one server-wide cache; `kind` picks the time-to-live."""

    def __init__(self, reader: FleetReader) -> None:
        self.reader, self.cache = reader, TTLCache()

    def __call__(self, kind: str, method: str, *args: Any, **kwargs: Any) -> Any:
        key = (method, args, tuple(sorted(kwargs.items())))
        return self.cache.get(key, TTL[kind], lambda: getattr(self.reader, method)(*args, **kwargs))
