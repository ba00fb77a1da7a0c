"""The plan lists every query a rollback will judge, with its provider and threshold, and the
resource reading of each host; planning sends no query (it changes and judges nothing)."""

from __future__ import annotations

from pathlib import Path

from bot.plan.render import markdown
from bot.store.redis_store import RedisStore
from bot.workflow.version import Version
from tests.fixtures_hosts import SshEnv
from tests.test_plan import CAROL, planner_for, store  # noqa: F401 - the fixture

QUERY = 'sum(rate(http_requests_total{job="{app}",version="{version}",code=~"5.."}[1m]))'


async def test_the_plan_lists_every_query_it_will_judge(
    ssh_env: SshEnv,
    store: RedisStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    metrics = [
        {"name": "checkout errors", "provider": "prometheus", "url": "http://127.0.0.1:1",
         "query": QUERY, "max": 5},
        {"name": "queue depth", "provider": "web", "url": "http://127.0.0.1:1/stats?app={app}",
         "path": "queue.depth", "min": 0, "max": 100},
    ]  # fmt: skip
    planner = planner_for(ssh_env, store, tmp_path, metrics=metrics, resources={"cpu": 80})
    plan = await planner.plan("myapp", Version("v1.4.2"), CAROL)

    text = markdown(plan)
    filled = QUERY.replace("{app}", "myapp").replace("{version}", "v1.4.2")
    assert f"- Signal: checkout errors (prometheus, max 5): `{filled}`" in text
    assert "- Signal: queue depth (web, min 0, max 100): `" in text
    for host in ("web1", "web2"):
        assert (
            f"- Signal: resources on {host} (max CPU 80 %, memory 90 %, disk 95 %): "
            f"CPU, memory and disk of {host} (/proc, df -P {ssh_env.workdir})"
        ) in text
