"""One small generic registry, used for model servers, metrics and judges.

An entry is either an object (filled by the `register` decorator) or a lazy `"module:attr"`
string, imported on first `get`, so naming a heavy entry costs nothing until it is used.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from ctbench.errors import UnknownName

T = TypeVar("T")


def import_target(target: str) -> object:
    """The object a `"package.module:attr"` string names (dots in `attr` walk attributes).

    Raises `UnknownName` when the string has no `:` or the module lacks the attribute; an
    `ImportError` from the module itself (a missing dependency) is left as it is.

    >>> import_target("ctbench.registry:Registry") is Registry
    True
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UnknownName(f"{target!r} is not of the form 'package.module:Name'")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UnknownName(f"{target!r}: module {module_name!r} has no {attr!r}") from None
    return obj


class Registry(Generic[T]):
    """Name -> object, filled by decorator or by lazy `"module:attr"` entries; unknown names list
    what is available.

    >>> models = Registry("model server")
    >>> @models.register("chance")
    ... class Chance: ...
    >>> models.get("chance") is Chance
    True
    >>> lazy = Registry("class", {"registry": "ctbench.registry:Registry"})
    >>> lazy.get("registry") is Registry
    True
    """

    def __init__(self, kind: str, lazy: Mapping[str, str] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        for name, target in (lazy or {}).items():
            self.add_lazy(name, target)

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._lazy or (name in self._items and self._items[name] is not obj):
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def add_lazy(self, name: str, target: str) -> None:
        """Bind `name` to `"package.module:attr"`, imported on the first `get(name)`."""
        if name in self._items or self._lazy.get(name, target) != target:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: {target!r} is not of the form 'package.module:Name'")
        self._lazy[name] = target

    def get(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        if name in self._lazy:
            obj: T = import_target(self._lazy[name])  # type: ignore[assignment]
            self._items[name] = obj
            return obj
        available = ", ".join(self.names()) or "(none)"
        raise UnknownName(f"Unknown {self.kind} {name!r}. Available: {available}")

    def target(self, name: str) -> str | None:
        """The `"module:attr"` a lazy entry names (None for a decorated or unknown one)."""
        return self._lazy.get(name)

    def name_of(self, obj: object) -> str | None:
        """The name `obj` is registered under, looking only at entries already loaded and at lazy
        targets by module and qualified name (so nothing is imported); None if it has none."""
        for name, item in self._items.items():
            if item is obj:
                return name
        where = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"
        for name, target in self._lazy.items():
            if target == where:
                return name
        return None

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._lazy))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
