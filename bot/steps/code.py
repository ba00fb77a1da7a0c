"""Step 2 — Roll back code: the `hotfix/rollback-…` branch, made in the bot's clone and pushed.

Assess finds what to go back to and which method fits; this step makes the branch the redeploy
step fetches on the hosts. Nothing here touches a host.
"""

from __future__ import annotations

from bot.steps.context import Outcome, StepContext
from bot.workflow.errors import StepError
from bot.workflow.facts import AssessFacts, CodeFacts, Facts
from bot.workflow.messages import Block, CodeBlock, Emphasis, Inline, para
from runners.git import AppRepo, CommitInfo, Method, clone_dir, hotfix_branch, redact

MAX_COMMITS = 50  # a thread is no place for a whole release history


def app_repo(ctx: StepContext) -> AppRepo:
    return AppRepo(ctx.app.repo, clone_dir(ctx.workspace, "repos", ctx.app.name, ctx.app.repo))


def oneline(commits: list[CommitInfo], limit: int = MAX_COMMITS) -> str:
    """`git log --oneline` text, with a line saying how many were left out."""
    lines = [c.oneline() for c in commits[:limit]]
    if len(commits) > limit:
        lines.append(f"… and {len(commits) - limit} more")
    return "\n".join(lines)


async def _sync(ctx: StepContext, repo: AppRepo) -> None:
    for note in await repo.sync():
        await ctx.say(f"ℹ️ {note}")


async def _not_found(repo: AppRepo, version: str, what: str) -> StepError:
    tags = await repo.recent_tags()
    known = ", ".join(f"`{t}`" for t in tags) or "none"
    return StepError(
        f"{what} `{version}` is not a tag, a branch or a commit of {redact(repo.url)}",
        hint=f"Recent tags: {known}. Start again with one of them.",
    )


Synced = tuple[AppRepo, list[str]]  # the operator's clone, fetched; what its sync noted


async def synced_repo(ctx: StepContext) -> Synced:
    """The app's clone in the workspace, fetched from origin (the notes not said yet)."""
    repo = app_repo(ctx)
    return repo, await repo.sync()


async def assess_code(ctx: StepContext, deployed: str, synced: Synced | None = None) -> AssessFacts:
    """What to go back to, what lies between, and how: facts for the assess message.
    `synced`: the clone already fetched (Assess starts that beside the hosts' reads)."""
    repo, notes = synced or await synced_repo(ctx)
    for note in notes:
        await ctx.say(f"ℹ️ {note}")
    deployed_sha = await repo.resolve(deployed)
    if deployed_sha is None:
        raise await _not_found(repo, deployed, "The deployed version (read on the hosts)")
    requested = ctx.incident.requested_version
    if requested:
        target = requested
    else:
        previous = await repo.previous_tag(deployed_sha)
        if previous is None:
            raise StepError(
                f"there is no tag before the deployed version `{deployed}`",
                hint="Name the version to go back to: `/rollback APP VERSION`.",
            )
        target = previous
    target_sha = await repo.resolve(target)
    if target_sha is None:
        raise await _not_found(repo, target, "Version")
    plan = await repo.plan(target_sha, deployed_sha)
    return AssessFacts(
        deployed=deployed,
        target=target,
        target_sha=target_sha,
        deployed_sha=deployed_sha,
        commits=[c.fact() for c in plan.commits[:MAX_COMMITS]],
        commit_count=len(plan.commits),
        git_log=oneline(plan.commits),
        merges=[c.fact() for c in plan.merges],
        code_methods=list(plan.methods),
        code_method_recommended=plan.recommended,
        code_method_reason=plan.reason,
        hotfix_branch=hotfix_branch(ctx.app.name, target, ctx.incident.id),
    )


def hotfix_branch_for(ctx: StepContext) -> str:
    return hotfix_branch(ctx.app.name, str(ctx.incident.target), ctx.incident.id)


def chosen_method(facts: Facts) -> Method:
    """The method picked at the decision (or by a plan), else the one Assess recommended."""
    methods = [str(m) for m in facts.assess.code_methods or ["tag"]]
    method = str(facts.code_method or facts.assess.code_method_recommended or "tag")
    if method not in ("revert", "tag"):
        raise StepError(f"unknown way to roll back code: `{method}`", hint="Choose revert or tag.")
    if method not in methods:
        raise StepError(
            f"`{method}` is not possible for this rollback",
            hint=f"Possible: {', '.join(methods)}. {facts.assess.code_method_reason}".strip(),
        )
    return "revert" if method == "revert" else "tag"


async def run(ctx: StepContext) -> Outcome:
    facts = ctx.facts
    target = ctx.incident.target
    if not target or not facts.assess.target_sha or not facts.assess.deployed_sha:
        raise StepError(
            "the assessment did not record the target and deployed commits",
            hint="Retry the incident from the start.",
        )
    target_sha, deployed_sha = facts.assess.target_sha, facts.assess.deployed_sha
    repo = app_repo(ctx)
    await _sync(ctx, repo)
    now = await repo.resolve(target)
    if now != target_sha:
        # A tag that moved since assess means the approval was for other code.
        raise StepError(
            f"`{target}` now points at {now[:12] if now else 'nothing'}, not {target_sha[:12]} as "
            "when it was assessed",
            hint="Start a new rollback so the new commit is assessed and approved.",
        )
    chosen = chosen_method(facts)
    branch = hotfix_branch_for(ctx)

    existing = await repo.remote_branch(branch)
    if existing is not None:
        if not await repo.is_rollback(existing, target_sha, deployed_sha):
            raise StepError(
                f"origin already has `{branch}` at {existing[:12]}, and it is not a rollback "
                f"to `{target}`",
                hint="Someone else pushed it: delete it on origin (or rename it), then Retry.",
            )
        sha, verb = existing, "Reused"
    else:
        sha = await repo.create_hotfix(branch, target_sha, deployed_sha, chosen)
        await repo.push(branch)
        verb = "Pushed"

    undone = await repo.commits_between(target_sha, deployed_sha)
    added = await repo.commits_between(deployed_sha, sha) if sha != target_sha else []
    how = (
        f"{len(added)} revert commit(s) on top of the deployed version"
        if added
        else f"at `{target}` as it is"
    )
    said: list[Block | Inline] = [f"{verb} `{branch}` to origin at `{sha[:12]}` ({how})."]
    if added:
        said += [para(Emphasis("Revert commits:")), CodeBlock(oneline(added))]
    if undone:
        said += [
            para(Emphasis("Undone"), f" (`git log --oneline {target}..deployed`):"),
            CodeBlock(oneline(undone)),
        ]
    await ctx.say(*said)
    return Outcome(
        summary=f"{verb} `{branch}` at `{sha[:12]}` ({how})",
        facts=CodeFacts(hotfix_ref=branch, hotfix_sha=sha, method="revert" if added else "tag"),
    )
