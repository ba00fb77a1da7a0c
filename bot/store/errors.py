"""The store speaks to its callers in domain errors: a redis exception becomes a `StoreError`
(`StoreUnavailable` when Redis cannot be reached) at the edge of every port, so that no front
needs to know which database is behind it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.workflow.errors import StoreError, StoreUnavailable

C = TypeVar("C", bound=type)


def store_error(exc: RedisError) -> StoreError:
    """The domain error for a redis exception, with the same words."""
    kind = (
        StoreUnavailable
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError))
        else StoreError
    )
    error = kind(str(exc))
    error.__cause__ = exc
    return error


def translating(cls: C) -> C:
    """Every public coroutine method of `cls` raises `StoreError` instead of a redis exception."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _translated(member))
    return cls


def _translated(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except RedisError as exc:
            raise store_error(exc) from exc

    return call
