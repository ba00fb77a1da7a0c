"""Post-rollback actions: write the incident report, commit it, post it in the thread."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError
from git.repo import Repo

from bot import report_md
from bot.apps_file import AppsFile
from bot.ports import AuditEntry, Notifier
from bot.steps.context import Outcome, StepContext
from bot.workflow.facts import ReportFacts
from bot.workflow.model import Criterion, Incident
from bot.workflow.steps import STEPS

# Used only when the incidents repository has no identity of its own.
IDENTITY = {
    "GIT_AUTHOR_NAME": "Rewind",
    "GIT_AUTHOR_EMAIL": "rewind@localhost",
    "GIT_COMMITTER_NAME": "Rewind",
    "GIT_COMMITTER_EMAIL": "rewind@localhost",
}
QUIET = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}
PUSH_TIMEOUT = 60
# Two workers finishing incidents at once would race for the index lock.
_LOCKS: dict[Path, asyncio.Lock] = {}


@dataclass(frozen=True)
class Committed:
    sha: str | None  # None: not a git checkout, or nothing changed
    pushed: bool = False
    push_error: str = ""
    note: str = ""


def incidents_dir(configured: str) -> Path:
    return (Path.cwd() / Path(configured).expanduser()).resolve()


def _repo_for(directory: Path) -> Repo | None:
    try:
        repo = Repo(directory, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None
    if repo.bare or repo.working_tree_dir is None:
        return None
    return repo


def _identity(repo: Repo) -> dict[str, str]:
    reader = repo.config_reader()
    configured = reader.get_value("user", "name", "") and reader.get_value("user", "email", "")
    return {} if configured else IDENTITY


def commit_files(paths: list[Path], message: str) -> Committed:
    """Commit exactly `paths` (nothing else staged), then push when there is a remote.

    Blocking (GitPython); call it in a thread."""
    repo = _repo_for(paths[0].parent)
    if repo is None:
        return Committed(None, note="not a git checkout: written, not committed")
    with repo:
        root = Path(str(repo.working_tree_dir)).resolve()
        rel = [str(p.resolve().relative_to(root)) for p in paths]
        git = repo.git
        git.update_environment(**QUIET, **_identity(repo))
        ignored = git.check_ignore("--", *rel, with_exceptions=False).strip()
        if ignored:
            return Committed(None, note="ignored by git there: written, not committed")
        git.add("--", *rel)
        if not git.status("--porcelain", "--", *rel).strip():
            last = git.log("-n", "1", "--format=%H", "--", *rel).strip()
            return Committed(last or None, note="unchanged since the last commit")
        # `--only` leaves whatever a person had staged out of the bot's commit.
        git.commit("--no-verify", "--only", "-m", message, "--", *rel)
        sha = repo.head.commit.hexsha
        if not repo.remotes:
            return Committed(sha, note="no remote: committed, not pushed")
        return _push(repo, sha)


def _push(repo: Repo, sha: str) -> Committed:
    if repo.head.is_detached:
        return Committed(sha, push_error="HEAD is detached: no branch to push")
    branch = repo.active_branch
    tracking = branch.tracking_branch()
    if tracking is not None:
        remote, dest = tracking.remote_name, tracking.remote_head
    else:
        names = [r.name for r in repo.remotes]
        remote, dest = ("origin" if "origin" in names else names[0]), branch.name
    try:
        repo.git.push(remote, f"HEAD:refs/heads/{dest}", kill_after_timeout=PUSH_TIMEOUT)
    except GitCommandError as exc:
        why = (exc.stderr or str(exc)).strip().splitlines()
        return Committed(sha, push_error=why[-1] if why else "push failed")
    return Committed(sha, pushed=True)


@dataclass(frozen=True)
class Published:
    facts: ReportFacts
    where: str


async def publish(
    inc: Incident, apps: AppsFile, timeline: list[AuditEntry], notifier: Notifier
) -> Published:
    """Write the report (and the postmortem when major), commit it, post it in the thread."""
    directory = incidents_dir(apps.incidents.dir)
    content = report_md.render_report(inc, timeline, STEPS)
    name = report_md.report_filename(inc)
    path = directory / name
    files = {path: content}
    if inc.major:
        files[directory / report_md.postmortem_filename(inc)] = report_md.render_postmortem(
            inc, name
        )

    def write() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for target, text in files.items():
            if target.name.startswith("postmortem-") and target.exists():
                continue  # people may already be filling it in
            target.write_text(text, encoding="utf-8")

    await asyncio.to_thread(write)
    what = f"rolled back to {inc.target}" if inc.status.open else f"{inc.status.value}"
    message = f"Incident report: {inc.app} {what} ({inc.id})"
    lock = _LOCKS.setdefault(directory, asyncio.Lock())
    async with lock:
        try:
            committed = await asyncio.to_thread(commit_files, list(files), message)
        except GitCommandError as exc:
            why = (exc.stderr or str(exc)).strip().splitlines()
            committed = Committed(None, note="commit failed: " + (why[-1] if why else "?"))
    where = f"`{path}`"
    if committed.sha:
        where += f", commit `{committed.sha[:10]}`"
        where += " (pushed)" if committed.pushed else ""
    if committed.note:
        where += f" — {committed.note}"
    await notifier.upload(
        inc, name, content, title=f"Incident report {inc.id}", comment=f"Incident report: {where}"
    )
    if inc.major:
        pm = directory / report_md.postmortem_filename(inc)
        await notifier.upload(
            inc,
            pm.name,
            await asyncio.to_thread(pm.read_text, encoding="utf-8"),
            title=f"Postmortem {inc.id}",
            comment="Major incident: the postmortem template to fill in.",
        )
    if committed.push_error:
        await notifier.say(
            inc,
            f":warning: The report is committed but the push failed: {committed.push_error}. "
            f"Push `{directory}` by hand.",
        )
    facts = ReportFacts(path=str(path), commit=committed.sha or "", pushed=committed.pushed)
    if inc.major:
        facts.postmortem_path = str(directory / report_md.postmortem_filename(inc))
    return Published(facts, where)


async def run(ctx: StepContext) -> Outcome:
    published = await publish(ctx.incident, ctx.apps, await ctx.timeline(), ctx.notifier)
    ctx.facts.report = published.facts
    return Outcome(
        summary=f"Report written: {published.where}",
        facts=published.facts,
        criteria={Criterion.REPORT: True},
    )
