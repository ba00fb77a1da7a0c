"""Step 2, Roll back code: assess facts, the hotfix branch on a real origin, hosts fetching it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from bot.sample.build import SampleRepo, git
from bot.steps import assess, code
from bot.steps.context import StepContext
from bot.workflow.errors import StepError
from bot.workflow.facts import AssessFacts, CodeFacts
from bot.workflow.model import StepId
from runners.git import clone_dir
from runners.ssh import SshRunner
from tests.fakes import (
    RecordingNotifier,
    app_config,
    apps_file,
    make_ctx,
    new_incident,
    with_step_commands,
)
from tests.fixtures_hosts import SshEnv
from tests.test_git_runner import protect_hotfix_branches, work_clone

BRANCH = "hotfix/rollback-myapp-v1.4.2-INC-42"


def context(
    origin: Path, tmp_path: Path, *, requested: str | None = None, config: Any = None
) -> StepContext:
    apps = apps_file(
        "myapp",
        config
        or app_config(
            str(origin), [{"name": "web1", "address": "127.0.0.1", "port": 2222}], "/srv/myapp"
        ),
    )
    incident = new_incident(apps.apps["myapp"], requested_version=requested)
    runner = SshRunner(apps.apps["myapp"])
    return make_ctx(apps, runner, step=StepId.ASSESS, incident=incident, workspace=tmp_path / "ws")


async def assessed(ctx: StepContext, deployed: str = "v1.5.0") -> AssessFacts:
    facts = await code.assess_code(ctx, deployed)
    ctx.incident.facts.store(facts)
    ctx.step = StepId.CODE
    return facts


def notifier(ctx: StepContext) -> RecordingNotifier:
    assert isinstance(ctx.notifier, RecordingNotifier)
    return ctx.notifier


async def test_assess_proposes_previous_tag_and_revert(
    sample_repo: SampleRepo, tmp_path: Path
) -> None:
    ctx = context(sample_repo.origin, tmp_path)
    facts = await assessed(ctx)
    assert facts.target == "v1.4.2"
    assert facts.target_sha == sample_repo.tags["v1.4.2"]
    assert facts.deployed_sha == sample_repo.tags["v1.5.0"]
    assert facts.commit_count == 6
    assert facts.git_log == git(["log", "--oneline", "v1.4.2..v1.5.0"], sample_repo.origin)
    assert [m.sha for m in facts.merges] == sample_repo.merges[::-1]
    assert facts.code_methods == ["revert", "tag"]
    assert facts.code_method_recommended == "revert"
    assert "keeps the history" in facts.code_method_reason
    assert facts.hotfix_branch == BRANCH
    assert (code.app_repo(ctx).path / ".git").is_dir()
    assert code.app_repo(ctx).path.parent == tmp_path / "ws" / "repos"


async def test_assess_unknown_versions(sample_repo: SampleRepo, tmp_path: Path) -> None:
    ctx = context(sample_repo.origin, tmp_path, requested="v9.9.9")
    with pytest.raises(StepError) as err:
        await code.assess_code(ctx, "v1.5.0")
    assert "`v9.9.9` is not a tag" in err.value.what
    assert "`v1.5.0`" in err.value.hint and "`v1.4.2`" in err.value.hint
    with pytest.raises(StepError, match="deployed version"):
        await code.assess_code(context(sample_repo.origin, tmp_path), "v0.0.1")
    with pytest.raises(StepError, match="no tag before"):
        await code.assess_code(context(sample_repo.origin, tmp_path), "v1.4.0")


async def test_run_pushes_revert_branch_and_is_idempotent(
    sample_repo: SampleRepo, tmp_path: Path
) -> None:
    ctx = context(sample_repo.origin, tmp_path)
    await assessed(ctx)
    out = await code.run(ctx)
    origin = sample_repo.origin
    sha = git(["rev-parse", f"refs/heads/{BRANCH}"], origin)
    assert out.facts == CodeFacts(hotfix_ref=BRANCH, hotfix_sha=sha, method="revert")
    assert git(["diff", "--stat", "v1.4.2", BRANCH], origin) == ""
    assert git(["merge-base", "--is-ancestor", "v1.5.0", BRANCH], origin) == ""
    said = notifier(ctx).text
    assert f"Pushed `{BRANCH}` to origin at `{sha[:12]}`" in said
    assert "3 revert commit(s)" in said
    for line in git(["log", "--oneline", "v1.4.2..v1.5.0"], origin).splitlines():
        assert line in said  # the undone commits, as `git log --oneline` shows them
    assert 'Revert "Release 1.5.0"' in said

    assert isinstance(out.facts, CodeFacts)
    ctx.incident.facts.store(out.facts)
    again = await code.run(ctx)
    assert isinstance(again.facts, CodeFacts)
    assert again.facts.hotfix_sha == sha
    assert again.summary.startswith("Reused")
    assert git(["rev-parse", f"refs/heads/{BRANCH}"], origin) == sha


async def test_run_tag_method(sample_repo: SampleRepo, tmp_path: Path) -> None:
    ctx = context(sample_repo.origin, tmp_path)
    await assessed(ctx)
    ctx.incident.facts.code_method = "tag"
    out = await code.run(ctx)
    assert isinstance(out.facts, CodeFacts)
    assert out.facts.hotfix_sha == sample_repo.tags["v1.4.2"]
    assert out.facts.method == "tag"
    assert (
        git(["rev-parse", f"refs/heads/{BRANCH}"], sample_repo.origin)
        == (sample_repo.tags["v1.4.2"])
    )
    assert "at `v1.4.2` as it is" in notifier(ctx).text


async def test_run_refuses_what_it_did_not_make(sample_repo: SampleRepo, tmp_path: Path) -> None:
    ctx = context(sample_repo.origin, tmp_path)
    await assessed(ctx)
    dev = work_clone(sample_repo.origin, tmp_path)
    git(["push", "--quiet", "origin", f"v1.5.0^{{commit}}:refs/heads/{BRANCH}"], dev)
    with pytest.raises(StepError, match="not a rollback"):
        await code.run(ctx)
    git(["push", "--quiet", "origin", f":refs/heads/{BRANCH}"], dev)

    ctx.incident.facts.code_method = "teleport"  # type: ignore[assignment]
    with pytest.raises(StepError, match="unknown way"):
        await code.run(ctx)
    ctx.incident.facts.code_method = "revert"
    ctx.incident.facts.assess.code_methods = ["tag"]
    with pytest.raises(StepError, match="not possible"):
        await code.run(ctx)


async def test_run_reports_protected_branch(sample_repo: SampleRepo, tmp_path: Path) -> None:
    ctx = context(sample_repo.origin, tmp_path)
    await assessed(ctx)
    protect_hotfix_branches(sample_repo.origin)
    with pytest.raises(StepError) as err:
        await code.run(ctx)
    assert "origin refused it" in err.value.what
    assert "hotfix branches are protected" in err.value.hint
    assert git(["branch", "--list", "hotfix/*"], sample_repo.origin) == ""


async def test_run_refuses_a_moved_tag(sample_repo: SampleRepo, tmp_path: Path) -> None:
    ctx = context(sample_repo.origin, tmp_path)
    await assessed(ctx)
    dev = work_clone(sample_repo.origin, tmp_path)
    git(["tag", "--force", "v1.4.2", "v1.4.0"], dev)
    git(["push", "--quiet", "--force", "origin", "refs/tags/v1.4.2"], dev)
    with pytest.raises(StepError, match="now points at"):
        await code.run(ctx)


@pytest.mark.hosts(1)
async def test_hosts_fetch_exactly_the_hotfix_ref(ssh_env: SshEnv, tmp_path: Path) -> None:
    assert ssh_env.repo is not None
    config = with_step_commands(ssh_env.app_config())
    ctx = context(ssh_env.repo.origin, tmp_path, config=config)
    try:
        await assessed(ctx)
        out = await code.run(ctx)
        assert isinstance(out.facts, CodeFacts)
        ctx.incident.facts.store(out.facts)
        results = await ctx.run_all("fetch", ref=out.facts.hotfix_ref)
        assert all(not isinstance(r, StepError) and r.ok for r in results.values()), results
    finally:
        await ctx.hosts.close()
    host = ssh_env.hosts[0]
    assert host.run("git rev-parse HEAD").strip() == ctx.incident.facts.code.hotfix_sha
    assert "BROKEN = False" in host.run("cat app.py")
    assert host.run("cat VERSION").strip() == "1.4.2"


@pytest.mark.hosts(1)
async def test_assess_fetches_the_clone_while_it_reads_the_hosts(
    ssh_env: SshEnv, tmp_path: Path
) -> None:
    """The operator's clone is synced beside the hosts' reads, not once they are in: a host
    whose `version` waits (up to 30 s) for the clone to exist still answers."""
    config = with_step_commands(ssh_env.app_config())
    clone = shlex.quote(str(clone_dir(tmp_path / "ws", "repos", "myapp", config["repo"])))
    config["deploy"]["commands"]["version"] = (
        f"for i in $(seq 300); do test -d {clone}/.git && break; sleep 0.1; done; "
        f"test -d {clone}/.git && git describe --tags --always"
    )
    ctx = context(Path(config["repo"]), tmp_path, config=config)
    try:
        outcome = await assess.run(ctx)
    finally:
        await ctx.hosts.close()
    assert isinstance(outcome.facts, AssessFacts)
    assert outcome.facts.deployed_by_host == {"web1": "v1.5.0"}
    assert outcome.facts.target == "v1.4.2"
