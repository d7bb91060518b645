"""One small generic registry, used for model servers, metrics and judges."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from ctbench.errors import UnknownName

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object, filled by decorator; unknown names list what is available.

    >>> models = Registry("model server")
    >>> @models.register("chance")
    ... class Chance: ...
    >>> models.get("chance") is Chance
    True
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            available = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownName(f"Unknown {self.kind} {name!r}. Available: {available}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
