"""A bounded, thread-safe mapping that forgets the least recently used key.

The long-running faces keep per-thread conversations, answered Slack events
and answers awaiting a vote; all of them grow with traffic, so each is capped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = self._items[key] = create()
            self._trim()
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            self._trim()

    def claim(self, *keys: K) -> bool:
        """Mark keys as seen; False, marking nothing, if any was seen already.

        Atomic, so that two deliveries of one event racing on two threads
        cannot both win.
        """
        with self._lock:
            if any(key in self._items for key in keys):
                return False
            for key in keys:
                self._items[key] = None  # type: ignore[assignment]
            self._trim()
            return True

    def _trim(self) -> None:
        while len(self._items) > self.size:
            self._items.popitem(last=False)
