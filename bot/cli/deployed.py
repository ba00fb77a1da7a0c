"""`python -m bot deployed APP VERSION [--by WHO] [--url URL] [--release ID]`: tell Rewind of a
deploy.

With `REWIND_URL` set (a pipeline away from the bot) it posts to `$REWIND_URL/api/deploys`
with `REWIND_API_TOKEN`; without, it records the deploy in Redis itself, as the API would.
"""

from __future__ import annotations

import json
import sys

import aiohttp

from bot.config.apps_file import AppConfig, AppsFile
from bot.config.settings import Settings
from bot.watch.deploys import DeployReport, parse_report
from bot.watch.proposals import Proposal
from bot.workflow.errors import UserFacingError
from bot.workflow.model import ThreadRef


async def run_deployed(
    settings: Settings, load: object, app: str, version: str, by: str, url: str, release: str = ""
) -> int:
    try:
        fields = {"app": app, "version": version, "by": by, "url": url, "release": release}
        report = parse_report(fields)
    except UserFacingError as exc:
        print(f"rewind: {exc}", file=sys.stderr)
        return 2
    if settings.api_url:
        return await _post(settings, report)
    assert callable(load)
    apps: AppsFile = load(settings)
    return await _record(settings, apps, report)


async def _post(settings: Settings, report: DeployReport) -> int:
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not token:
        print("rewind: REWIND_URL is set but REWIND_API_TOKEN is not", file=sys.stderr)
        return 2
    endpoint = settings.api_url.rstrip("/") + "/api/deploys" if settings.api_url else ""
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                endpoint,
                json=report.model_dump(exclude_defaults=True),
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            text = await resp.text()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"rewind: cannot reach {endpoint}: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    if status >= 300:
        print(f"rewind: {endpoint} answered {status}: {text[:500]}", file=sys.stderr)
        return 1
    _say(json.loads(text))
    return 0


async def _record(settings: Settings, apps: AppsFile, report: DeployReport) -> int:
    from bot.store.queue import make_queue
    from bot.store.stores import open_store
    from bot.store.ticks import SaqTickQueue
    from bot.watch.service import WatchService
    from runners.local import runner_for

    stores = open_store(settings.redis_url)
    queue = make_queue(settings.redis_url, settings.queue_name)
    service = WatchService(
        apps=apps,
        store=stores.watches,
        queue=SaqTickQueue(queue, heartbeat=settings.heartbeat),
        proposer=_NoProposer(),
        runner_factory=runner_for,
    )
    try:
        deploy, watch = await service.record(report, "cli")
    except UserFacingError as exc:
        print(f"rewind: {exc}", file=sys.stderr)
        return 2
    finally:
        await queue.disconnect()
        await stores.aclose()
    _say(
        {
            "deploy": deploy.id,
            "app": deploy.app,
            "version": deploy.version,
            "watch": watch.id if watch else None,
            "watching_for": watch.duration if watch else 0,
        }
    )
    return 0


def _say(body: dict[str, object]) -> None:
    watch = body.get("watch")
    what = (
        f"watching it for {body.get('watching_for'):g}s (watch {watch})" if watch else "not watched"
    )
    print(
        f"Deploy {body.get('deploy')} of {body.get('app')} {body.get('version')} recorded; {what}."
    )
    if body.get("warning"):
        print(f"warning: {body['warning']}")


class _NoProposer:
    """Recording a deploy proposes nothing; the workers do."""

    async def propose(self, app: AppConfig, proposal: Proposal) -> ThreadRef:
        raise RuntimeError("the CLI does not propose")

    async def settle(self, app: AppConfig, ref: ThreadRef, proposal: Proposal) -> None:
        raise RuntimeError("the CLI does not propose")
