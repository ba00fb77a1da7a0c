"""Redis memory per closed incident, over 10,000 incidents, and what the retention gives back.

Starts its own `redis-server` (a temp dir, a free port; never the shared one), then writes
incidents through the real `RedisStore` as the bot does: the incident opened, its audit trail
(`--audit` entries, about what a full rollback writes), the idempotency keys of a command and
its clicks, then closed. Prints `used_memory` and the key count at checkpoints, and the bytes
per closed incident. Then a second phase with a 2 s retention: the same incidents, closed, are
forgotten and the memory goes back to where it started.

    python bench/redis_growth.py [--n 10000] [--audit 40] [--timeout 600]

Prints figures; asserts nothing. Bounded by --n and --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.store.connection import connect  # noqa: E402
from bot.store.redis_store import RETENTION, RedisStore  # noqa: E402
from bot.workflow.facts import Facts  # noqa: E402
from bot.workflow.machine import new_steps  # noqa: E402
from bot.workflow.model import Incident, Status  # noqa: E402
from tests.redis_servers import RedisServer  # noqa: E402

CONCURRENCY = 50


def incident(n: int) -> Incident:
    inc = Incident(
        id=f"{n:06x}", app=f"app{n % 20}", environment="production", requested_version="v1.4.2",
        reason="checkout returns 500 after the v1.5.0 deploy", requested_by="U0CAROL",
        steps=new_steps(),
    )  # fmt: skip
    inc.facts = Facts.model_validate(
        {
            "assess": {
                "target": "v1.4.2",
                "deployed": "v1.5.0",
                "hotfix_branch": f"hotfix/rollback-app-v1.4.2-{inc.id}",
                "commits": [
                    {
                        "sha": f"{i:040x}",
                        "subject": f"Merge pull request #{i} from acme/feature-{i}",
                    }
                    for i in range(8)
                ],
                "migrations": [{"revision": "d4e5f6a1b2c3"}, {"revision": "c3d4e5f6a1b2"}],
            },
            "report": {"path": f"incidents/rollback-20261129-app-{inc.id}.md"},
        }
    )
    return inc


async def one(store: RedisStore, n: int, audit: int) -> None:
    inc = incident(n)
    await store.create(inc)
    await store.first_time(f"cmd:{inc.id}")
    for i in range(audit):
        await store.audit(inc.id, "worker-1", f"step succeeded: step {i}", "running")
    for i in range(3):
        await store.first_time(f"act:{inc.id}:{i}")
    inc.status = Status.COMPLETED
    inc.outcome = "Rolled back to v1.4.2; all completion criteria met."
    assert await store.save(inc)


async def write(store: RedisStore, start: int, count: int, audit: int, deadline: float) -> int:
    done = 0
    for batch in range(start, start + count, CONCURRENCY):
        if time.monotonic() > deadline:
            break
        upto = min(batch + CONCURRENCY, start + count)
        await asyncio.gather(*(one(store, n, audit) for n in range(batch, upto)))
        done += upto - batch
    return done


async def memory(store: RedisStore) -> tuple[int, int]:
    """used_memory, and the keys of incidents and audit trails (idempotency keys left out:
    they expire after an hour whatever the retention)."""
    info = await store.r.info("memory")
    kept = 0
    for pattern in ("rewind:incident:*", "rewind:audit:*"):
        async for _ in store.r.scan_iter(match=pattern, count=1000):
            kept += 1
    return int(info["used_memory"]), kept


async def run(n: int, audit: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), appendonly=False).start()
        store = RedisStore(connect(server.url()), retention=RETENTION)
        try:
            base, _ = await memory(store)
            print(f"Redis {server.port}: empty, used_memory {base:,} B")
            print(f"\nphase 1: {n:,} incidents closed, retention {RETENTION / 86400:.0f} days, "
                  f"{audit} audit entries each")  # fmt: skip
            head = ("incidents", "used_memory", "incident+audit keys", "B/incident", "incidents/s")
            print("{:>10} {:>14} {:>20} {:>11} {:>12}".format(*head))
            written, began = 0, time.monotonic()
            checkpoints = sorted({c for c in (1_000, 2_000, 5_000, n) if c <= n})
            for checkpoint in checkpoints:
                written += await write(store, written, checkpoint - written, audit, deadline)
                used, keys = await memory(store)
                rate = written / (time.monotonic() - began)
                print(f"{written:>10,} {used:>14,} {keys:>20,} {(used - base) / written:>11,.0f} "
                      f"{rate:>12,.0f}")  # fmt: skip
                if written < checkpoint:
                    print("(stopped at --timeout)")
                    break
            ttl = await store.r.ttl(f"rewind:incident:{incident(0).id}")
            print(f"a closed incident expires in {ttl / 86400:.1f} days")

            await store.r.flushdb()
            await asyncio.sleep(0.5)
            base, _ = await memory(store)
            short = RedisStore(store.r, retention=2)
            count = min(n, 2_000)
            print(f"\nphase 2: {count:,} incidents closed with a 2 s retention")
            await write(short, 0, count, audit, deadline)
            used, keys = await memory(short)
            print(f"  just closed: used_memory {used:,} B, {keys:,} incident+audit keys")
            wait_until = time.monotonic() + 60
            while keys > 0 and time.monotonic() < min(wait_until, deadline):
                await asyncio.sleep(1)
                used, keys = await memory(short)
            await store.r.delete(*[k async for k in store.r.scan_iter(match="rewind:seen:*")])
            used, keys = await memory(short)
            print(f"  after expiry: used_memory {used:,} B, {keys:,} incident+audit keys "
                  f"(empty db before: {base:,} B)")  # fmt: skip
            print("  (idempotency keys live 1 h whatever the retention; deleted by hand here)")
        finally:
            await store.r.aclose()
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    asyncio.run(run(max(args.n, 1), max(args.audit, 0), args.timeout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
