"""Reaching Redis: one URL (a server, or Redis Sentinel), clients that ride out a restart or a
failover with backoff, the outages they saw, and whether the server keeps anything on disk.

`REDIS_URL` is either a plain redis-py URL (`redis://host:6379/0`, `rediss://…`, `unix://…`) or
`redis+sentinel://[:password@]host1:26379[,host2:26379…]/SERVICE[/DB]`: the client asks the
sentinels where the primary of SERVICE is, and asks again after a failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import Sentinel as BlockingSentinel

from bot.store.quick_line import Connection as QuickConnection
from bot.workflow.errors import StartupError, StoreError, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
SENTINEL_SCHEME = "redis+sentinel"

# Bounded waits, so that a Redis that is away is said within Slack's 3 s instead of hanging.
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 5.0
# Backoff from 50 ms to 2 s, about 70 s in all: a restart or a failover is ridden out.
BACKOFF = {"cap": 2.0, "base": 0.05}
RETRIES = 40
STALE = 3.0  # seconds after Redis is back during which a dropped connection is a leftover


class RedisUrlError(StartupError, ValueError):
    """REDIS_URL cannot be used; the message says how to write it."""


@dataclass(frozen=True)
class RedisTarget:
    url: str  # as given; never logged as is (it may hold a password)
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    password: str | None = None
    username: str | None = None
    sentinel_password: str | None = None

    @property
    def sentinel(self) -> bool:
        return bool(self.sentinels)

    def redacted(self) -> str:
        parts = urlsplit(self.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return parts._replace(netloc=host, query="").geturl()


def parse_url(url: str) -> RedisTarget:
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return RedisTarget(url=url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise RedisUrlError(
                f"REDIS_URL: sentinel `{item}` needs host:port, e.g. "
                "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
            )
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not sentinels or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RedisUrlError(
            "REDIS_URL: a Sentinel URL names the sentinels, the service and the database, e.g. "
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
        )
    query = parse_qs(parts.query)
    return RedisTarget(
        url=url,
        sentinels=tuple(sentinels),
        service=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        password=unquote(password) or None,
        username=unquote(username) or None,
        sentinel_password=query.get("sentinel_password", [None])[0],
    )


class Outage:
    """When this process last lost Redis and for how long; shared by all its clients.

    The first failed call opens an outage, the next successful call closes it and tells the
    listeners (the web process says it in the threads of open incidents).
    """

    def __init__(self) -> None:
        self.since: datetime | None = None
        self._started = 0.0
        self.last_back = 0.0  # time.monotonic() when Redis last came back
        self.listeners: list[Callable[[datetime, float], None]] = []
        self.run_id: str | None = None  # the server that answered this process's last handshake

    def __deepcopy__(self, memo: dict[int, Any]) -> Outage:
        return self  # redis-py deep-copies each connection's Retry: the outage stays one

    def failed(self, error: BaseException | None = None) -> None:
        # Right after Redis is back, the pool's older connections fail once each: the same outage.
        if self.last_back and time.monotonic() - self.last_back < STALE:
            return
        if self.since is None:
            self.since = datetime.now(UTC)
            self._started = time.monotonic()
            # Once per outage, not per attempt: a minute of retries would be hundreds of lines.
            why = reason(error) if error is not None else "no answer"
            log.warning("Redis connection lost (%s); retrying with backoff", why)

    def answered_by(self, run_id: str) -> None:
        """A handshake's server: another one than before, with no call failed meanwhile, is a
        restart (or a failover) that came and went between two calls. redis-py then reconnects
        a pooled connection the server closed without a retry, so no call ever failed: the
        outage is opened here, and the handshake's success closes it (said as under a second).
        """
        if not run_id:
            return
        known, self.run_id = self.run_id, run_id
        if known is not None and known != run_id and self.since is None:
            self.since = datetime.now(UTC)
            self._started = time.monotonic()
            log.warning("Redis restarted or failed over between two calls (a new server answers)")

    def succeeded(self) -> None:
        if self.since is None:
            return
        since, seconds = self.since, time.monotonic() - self._started
        self.since = None
        self.last_back = time.monotonic()
        log.info("Redis answers again after %.1f s away", seconds)
        for listener in self.listeners:
            listener(since, seconds)


class ReportingRetry(Retry):
    """Retry with backoff, and say so in the log: an outage must be visible, never a crash."""

    def __init__(self, outage: Outage | None = None, retries: int = RETRIES) -> None:
        super().__init__(ExponentialBackoff(**BACKOFF), retries)
        self.outage = outage or Outage()

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        async def reported(error: Exception, *count: int) -> None:
            log.debug("Redis call failed (%s); retrying with backoff", error)
            self.outage.failed(error)
            await fail(error, *count)

        return await super().call_with_retry(do, reported, is_retryable, with_failure_count)


class _ReportingConnection:
    """A connection that says when it has really reached Redis again (handshake done).

    Only a new connection's handshake proves Redis is back: an old connection may look
    connected and fail on its next command.
    """

    retry: Retry

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await super().on_connect_check_health(check_health)  # type: ignore[misc]
        if isinstance(self.retry, ReportingRetry):
            self.retry.outage.answered_by(await self._run_id())
            self.retry.outage.succeeded()

    async def _run_id(self) -> str:
        """The answering server's run id (it changes on a restart), on this connection."""
        await self.send_command("INFO", "server", check_health=False)  # type: ignore[attr-defined]
        try:
            info = await self.read_response()  # type: ignore[attr-defined]
        except ResponseError:  # INFO not allowed to this user (an ACL): no restart seen this way
            return ""
        text = info.decode() if isinstance(info, bytes) else str(info)
        for line in text.splitlines():
            if line.startswith("run_id:"):
                return line.partition(":")[2].strip()
        return ""


class _AskingSentinel:
    """Asks the sentinels where the primary is before every socket connect.

    redis-py asks only in `connect()`, but a command's retry reconnects through a lower call
    that keeps the old address: after a failover it would knock on the dead primary until its
    retries run out.
    """

    connection_pool: Any
    host: str
    port: int

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()  # type: ignore[misc]


def _reporting(cls: type[Any]) -> type[Any]:
    if issubclass(cls, _ReportingConnection):
        return cls
    bases: tuple[type[Any], ...] = (_ReportingConnection, cls)
    if issubclass(cls, SentinelManagedConnection):
        bases = (_ReportingConnection, _AskingSentinel, cls)
    return type(f"Reporting{cls.__name__}", bases, {})


def _sentinel_options(target: RedisTarget) -> dict[str, Any]:
    """How both kinds of Sentinel client (asyncio and blocking) reach the sentinels and the
    primary they name."""
    return {
        "sentinel_kwargs": {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": COMMAND_TIMEOUT,
            "password": target.sentinel_password,
        },
        "password": target.password,
        "username": target.username,
        "db": target.db,
    }


def blocking_connections(url: str) -> Callable[[], QuickConnection]:
    """Unopened blocking connections to the Redis (or Sentinel service's primary) of `url`, for
    `bot.store.quick_line`: no retries (its caller goes on by another path)."""
    target = parse_url(url)
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": COMMAND_TIMEOUT,
    }
    if not target.sentinel:
        return redis.ConnectionPool.from_url(url, **options).make_connection
    sentinel = BlockingSentinel(list(target.sentinels), **_sentinel_options(target))
    pool = sentinel.master_for(target.service, **options).connection_pool
    return functools.partial(pool.make_connection)


def connect(
    url: str,
    *,
    outage: Outage | None = None,
    decode: bool = True,
    command_timeout: float | None = COMMAND_TIMEOUT,
) -> aioredis.Redis:
    """A client that rides out a Redis restart or failover: retried with backoff, never a crash.

    `command_timeout=None` is for saq, whose worker blocks on BLMOVE.
    """
    target = parse_url(url)
    options: dict[str, Any] = {
        "decode_responses": decode,
        "retry": ReportingRetry(outage),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": command_timeout,
        "health_check_interval": 15,
    }
    if not target.sentinel:
        client: aioredis.Redis = aioredis.Redis.from_url(url, **options)
        pool = client.connection_pool
        pool.connection_class = _reporting(pool.connection_class)
        return client
    sentinel = Sentinel(list(target.sentinels), **_sentinel_options(target))
    client = sentinel.master_for(target.service, **options)
    pool = client.connection_pool
    pool.connection_class = _reporting(pool.connection_class)
    return client


PROBE_TIMEOUT = 3.0


def lost(exc: BaseException) -> bool:
    """An error that only says Redis is away: the outage's one warning has said it already."""
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, StoreUnavailable))


def _redis_error(exc: BaseException) -> BaseException:
    """The redis exception behind a `StoreError` (its words and kind say why)."""
    return exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ is not None else exc


class OutageSaid(logging.Filter):
    """Drops a library's traceback for a Redis that is away (saq's upkeep, once its client's
    retries run out): one warning per outage, not a traceback a minute."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not lost(error)


def reason(exc: BaseException) -> str:
    """Why Redis could not be used, in plain words (never the URL: it may hold a password)."""
    exc = _redis_error(exc)
    if isinstance(exc, AuthenticationError) or (
        isinstance(exc, ResponseError) and str(exc).startswith(("WRONGPASS", "NOAUTH", "NOPERM"))
    ):
        text = _first_line(exc)
        if text.startswith(("NOAUTH", "HELLO must be called")):
            text = "this Redis requires a password"
        return f"authentication failed ({text})"
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(exc):
        return "connection refused"
    if isinstance(cause, OSError) and "Name or service not known" in str(cause):
        return "host not found"
    if isinstance(exc, (RedisTimeoutError, TimeoutError)):
        return "no answer in time"
    return _first_line(exc) or type(exc).__name__


def hint(url: str, exc: BaseException) -> str:
    """What to do about `reason(exc)`."""
    exc = _redis_error(exc)
    if isinstance(exc, (AuthenticationError, ResponseError)):
        return "fix the password (or user) in REDIS_URL"
    if _tls_silent(url, exc):
        return "use redis:// if that Redis does not speak TLS, or fix REDIS_URL"
    return "start Redis or fix REDIS_URL"


def unreachable(url: str, exc: BaseException) -> str:
    """One line for an operator: where, why, what to do; no password."""
    where = parse_url(url).redacted()
    why = "no answer to the TLS handshake" if _tls_silent(url, exc) else reason(exc)
    return f"cannot reach Redis at {where} (REDIS_URL): {why} — {hint(url, exc)}"


def _tls_silent(url: str, exc: BaseException) -> bool:
    # A plain Redis given a TLS hello waits for more bytes: the handshake times out.
    exc = _redis_error(exc)
    timeout = isinstance(exc, (RedisTimeoutError, TimeoutError))
    return urlsplit(url).scheme == "rediss" and timeout


async def probe(url: str, timeout: float = PROBE_TIMEOUT) -> None:
    """One PING, no retry: at start-up an unreachable Redis is refused at once (StartupError),
    where the process's own clients would retry for a minute and then crash."""
    target = parse_url(url)
    options: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    if target.sentinel:
        sentinel = Sentinel(
            list(target.sentinels),
            sentinel_kwargs={**options, "password": target.sentinel_password},
            password=target.password,
            username=target.username,
            db=target.db,
        )
        client: aioredis.Redis = sentinel.master_for(target.service, **options)
    else:
        client = aioredis.Redis.from_url(url, **options)
    try:
        await asyncio.wait_for(client.ping(), timeout + 1)
    except (TimeoutError, OSError, RedisError) as exc:
        raise StartupError(unreachable(url, exc)) from None
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


class ReplicaAck:
    """With Sentinel: after a write that matters, wait until a replica has it (WAIT), so that a
    failover does not undo an approval or a lock. Without a replica (the old primary is gone),
    waiting would only slow every write: it is skipped for a while and tried again."""

    TIMEOUT_MS = 500
    LONELY = 10.0  # seconds without WAIT after one that reached no replica

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self._skip_until = 0.0

    async def __call__(self, client: aioredis.Redis) -> None:
        if not self.replicas or time.monotonic() < self._skip_until:
            return
        try:
            acked = int(await client.wait(self.replicas, self.TIMEOUT_MS))
        except RedisError as exc:
            log.warning("Redis WAIT failed (%s); the write may not be on a replica yet", exc)
            return
        if acked < self.replicas:
            log.warning("no Redis replica acknowledged a write; a failover now could undo it")
            self._skip_until = time.monotonic() + self.LONELY


async def persistence_warning(client: aioredis.Redis) -> str | None:
    """One line when Redis keeps nothing on disk (or will not say), else None."""
    try:
        aof = await client.config_get("appendonly")
        save = await client.config_get("save")
    except RedisError as exc:
        reason = str(exc).splitlines()[0][:120]
        return (
            f"cannot read Redis's persistence settings (CONFIG GET: {reason}); make sure it runs "
            "with appendonly yes, or a Redis restart loses every open incident"
        )
    if str(aof.get("appendonly", "")).lower() == "yes":
        return None
    if str(save.get("save", "")).strip():
        return (
            "Redis persists by snapshots only (appendonly no): a crash loses what changed since "
            "the last snapshot, approvals included; set appendonly yes"
        )
    return (
        'Redis persists nothing (appendonly no, save ""): a Redis restart loses every open '
        "incident, its lock and its queue; set appendonly yes"
    )
