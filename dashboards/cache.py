"""A per-server cache in front of the `FleetReader`: however many sessions are open, each
query runs at most once per time-to-live, so the warehouse reads stay bounded (20 sessions
polling every 2 s cost what one does). A per-key lock makes sessions that ask at the same
moment wait for one computation instead of all running it. An expired value is served once
more while one background thread recomputes it (stale-while-revalidate), so a page never
waits for a refresh that its tick would have seen a moment later anyway; only a key never
computed before makes its caller wait."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from reporting.fleet import FleetReader

# How stale each kind of read may be, in seconds: the live parts refresh within a tick of the
# simulator's 5-s tick, slow-moving tables (predictions change once per scored hour, the model
# once per promotion) much less often.
LOG = logging.getLogger(__name__)
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
        if hit is not None:  # stale: serve it, refresh in the background (once)
            if lock.acquire(blocking=False):
                threading.Thread(target=self._refresh, args=(key, ttl, compute, lock),
                                 daemon=True).start()
            return hit[1]
        with lock:
            hit = self._values.get(key)
            if hit is not None:
                return hit[1]
            return self._store(key, ttl, compute())

    def _store(self, key: Hashable, ttl: float, value: Any) -> Any:
        self.computed += 1
        self._values[key] = (time.monotonic() + ttl, value)
        return value

    def _refresh(self, key: Hashable, ttl: float, compute: Callable[[], Any],
                 lock: threading.Lock) -> None:
        try:
            self._store(key, ttl, compute())
        except Exception:  # keep serving the last good value; retried at the next ask
            LOG.exception("refreshing %r failed; serving its last value", key)
            self._values[key] = (time.monotonic() + ttl, self._values[key][1])
        finally:
            lock.release()

    def clear(self) -> None:
        """Forget everything (after an action, so the page shows its effect at once)."""
        with self._guard:
            self._values.clear()


class CachedReader:
    """The reader's queries through one server-wide cache; `kind` picks the time-to-live."""

    def __init__(self, reader: FleetReader) -> None:
        self.reader, self.cache = reader, TTLCache()

    def __call__(self, kind: str, method: str, *args: Any, **kwargs: Any) -> Any:
        key = (method, args, tuple(sorted(kwargs.items())))
        return self.cache.get(key, TTL[kind], lambda: getattr(self.reader, method)(*args, **kwargs))
