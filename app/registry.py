"""One small helper for the project's named choices (source kinds, pipeline plans, backends, losses,
augmentations, recipes, bench runs): look-up by name, aliases, and one error wording for unknown names."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from polypview.errors import ConfigError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named entries; `registry[name]` raises ConfigError ("unknown WHAT 'x'; valid: a, b") for a name it lacks."""

    def __init__(self, what: str, entries: Mapping[str, T] | None = None, aliases: Mapping[str, str] | None = None):
        self.what = what
        self._entries: dict[str, T] = {}
        self._aliases = dict(aliases or {})
        for name, value in (entries or {}).items():
            self.add(name, value)

    def add(self, name: str, value: T) -> T:
        if name in self._entries and self._entries[name] is not value:
            raise ConfigError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = value
        return value

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda value: self.add(name, value)

    def resolve(self, name: str) -> str:
        """The entry's own name for `name` (an alias resolved); ConfigError when there is none."""
        key = self._aliases.get(name, name)
        if key not in self._entries:
            also = f" (also: {', '.join(self._aliases)})" if self._aliases else ""
            raise ConfigError(f"unknown {self.what} {name!r}; valid: {', '.join(self._entries)}{also}")
        return key

    def __getitem__(self, name: str) -> T:
        return self._entries[self.resolve(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._aliases.get(name, name) in self._entries

    def get(self, name: str, default=None):
        return self[name] if name in self else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
