"""One way to make a helper both a decorator (of plain and ``async`` functions) and a
context manager: a subclass says what happens around the call in ``enter`` and ``exit``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

__all__ = ["Around"]

F = TypeVar("F", bound=Callable[..., Any])


class Around:
    """``enter()`` returns a token; ``exit(token, error)`` closes it."""

    def enter(self) -> Any:
        return None

    def exit(self, token: Any, error: BaseException | None) -> None:
        return None

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                token = self.enter()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    self.exit(token, exc)
                    raise
                self.exit(token, None)
                return result

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            token = self.enter()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self.exit(token, exc)
                raise
            self.exit(token, None)
            return result

        return cast(F, run)

    # as a context manager (one at a time per object: tokens are kept on a stack)

    def __enter__(self) -> Any:
        token = self.enter()
        self.__dict__.setdefault("_tokens", []).append(token)
        return token

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.exit(self.__dict__["_tokens"].pop(), exc)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)
