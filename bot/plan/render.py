"""The plan as a Markdown file (posted in Slack, printed by the terminal) and a short summary."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.workflow.model import StepId
from bot.workflow.plan import Plan, PlanCommand
from bot.workflow.steps import SPECS


def filename(plan: Plan) -> str:
    return f"plan-{plan.app}-{plan.target}-{plan.id}.md".replace("/", "-")


def _fence(text: str, lang: str = "") -> list[str]:
    return [f"```{lang}", text.rstrip("\n"), "```"]


def _cmd_lines(cmds: Iterable[PlanCommand]) -> list[str]:
    """Consecutive commands of one host in one `sh` block, each under a comment saying what it
    is and whether it changes anything."""
    out: list[str] = []
    host: str | None = None
    for c in cmds:
        if c.host != host:
            if host is not None:
                out.append("```")
            host = c.host
            out += [f"On `{c.host}`:", "```sh"]
        note = f"; {c.note}" if c.note else ""
        out.append(f"# {c.name} ({'changes' if c.changes else 'reads'}{note})")
        out.append(c.command)
    if host is not None:
        out.append("```")
    return out


_RUNNING = re.compile(r"^--\s*Running downgrade (\S+) ->")


def _marked(sql: str, irreversible: set[str]) -> str:
    """The SQL with a warning under the header of each irreversible migration's downgrade."""
    out: list[str] = []
    for line in sql.splitlines():
        out.append(line)
        match = _RUNNING.match(line)
        if match and match.group(1) in irreversible:
            out.append("-- !!! IRREVERSIBLE: this downgrade raises or does nothing (data loss)")
    return "\n".join(out)


def summary(plan: Plan) -> str:
    """A few lines for the message the file goes with (plain text, no markup)."""
    b = plan.basis
    db = plan.database
    parts = [
        f"Plan {plan.id}: roll {plan.app} ({plan.environment}) back from {plan.deployed} "
        f"to {b.target} ({b.target_sha[:12]}), code by {b.code_method}.",
        f"{len(plan.commands)} command(s) on {len({c.host for c in plan.commands})} host(s); "
        + (
            f"{len(db.migrations)} migration(s) to undo"
            + (
                " (one cannot be undone: restore recommended)"
                if db.recommended == "restore"
                else ""
            )
            if db
            else "no migrations"
        )
        + f"; estimate: {plan.estimate}.",
        "Nothing was changed to make this plan.",
    ]
    if plan.busy:
        parts.append(f"Incident {plan.busy} holds {plan.app} now: the plan can run once it ends.")
    return "\n".join(parts)


def markdown(plan: Plan) -> str:
    b = plan.basis
    lines = [
        f"# Rollback plan `{plan.id}`: {plan.app} → {b.target}",
        "",
        f"Made {plan.at:%Y-%m-%d %H:%M:%S} UTC by {plan.by}, changing nothing: the hosts were "
        "only read, the hotfix branch was made in a scratch clone and not pushed, no lock was "
        f"taken. `Run this plan` opens incident `{plan.id}` with this target and method; if "
        "anything below changed by then, the incident says so before anything runs.",
        "",
        f"Environment: **{plan.environment}**. Estimated duration: {plan.estimate}.",
    ]
    if plan.busy:
        lines.append(f"\n> Incident `{plan.busy}` holds {plan.app} now; the plan can run after it.")
    lines += ["", "## 1. Assess (what Rewind finds now)", ""]
    for host, version in sorted(b.deployed_by_host.items()):
        lines.append(f"- `{host}` runs `{version}`")
    lines += [
        f"- Deployed: `{plan.deployed}` ({b.deployed_sha[:12]})",
        f"- Go back to: `{b.target}` ({b.target_sha[:12]})"
        + ("" if plan.requested_version else " — the tag before the deployed one"),
    ]
    if plan.warm_hosts is not None:
        hosts = sorted(b.deployed_by_host)
        cold = [h for h in hosts if h not in plan.warm_hosts]
        lines.append(
            "- Kept warm (switch `current` and restart, no fetch, no install): "
            + (", ".join(f"`{h}`" for h in plan.warm_hosts) or "no host")
            + (
                "; full deploy into a new release: " + ", ".join(f"`{h}`" for h in cold)
                if cold
                else ""
            )
        )
    if plan.database:
        lines.append(f"- Database revision: `{b.db_revision or 'base'}`")
    lines += ["", f"{plan.commit_count} commit(s) undone (`git log {b.target}..deployed`):", ""]
    lines += _fence("\n".join(f"{c.get('short', '')} {c.get('subject', '')}" for c in plan.commits))
    lines += ["", "Read while planning (read-only):", ""]
    lines += [f"- `{p.host}`: `{p.command}`" for p in plan.probes]

    lines += ["", "## 2. Roll back code", ""]
    others = [m for m in plan.code_methods if m != b.code_method]
    lines += [
        f"Method: **{b.code_method}** — {plan.code_reason}"
        + (f" (also possible: {', '.join(others)})" if others else ""),
        "",
        f"Branch `{plan.branch}`, made in the bot's clone, then pushed:",
        "",
    ]
    if plan.branch_commits:
        lines.append(
            f"{len(plan.branch_commits)} revert commit(s) on top of the deployed version "
            "(made in a scratch clone; their ids will differ, their content will not):"
        )
        lines += ["", *_fence("\n".join(plan.branch_commits))]
    else:
        lines.append(f"The branch is `{b.target}` as it is ({plan.branch_tree[:12]}).")
    lines += ["", *_fence("\n".join(plan.git_commands), "sh")]

    db = plan.database
    lines += ["", "## 3. Roll back the database", ""]
    if db is None:
        lines.append("No migrations to undo: the database is not touched.")
    else:
        lines += [
            f"On `{db.run_on}`: `{db.current or 'base'}` → `{db.target or 'base'}`, "
            f"{len(db.migrations)} migration(s), newest first:",
            "",
        ]
        for m in db.migrations:
            flag = (
                " — **IRREVERSIBLE**: its downgrade raises or does nothing"
                if m.irreversible
                else ""
            )
            lines.append(f"- `{m.revision}` → `{m.down_revision or 'base'}`: {m.message}{flag}")
        lines += ["", f"Backup first, to `{db.backup_path}` (named at the time it starts):", ""]
        lines += _fence(db.backup_command, "sh")
        lines += ["", "Downgrade SQL (`alembic downgrade --sql`, offline mode), in full:", ""]
        irreversible = {m.revision for m in db.migrations if m.irreversible}
        sql = _marked(db.sql, irreversible) if db.sql else ""
        lines += _fence(sql or f"-- could not be generated:\n{db.sql_error}", "sql")
        if db.recommended == "restore":
            lines += [
                "",
                "**A migration cannot be undone: the approval will recommend a restore from "
                f"`{db.restore_default}` instead of the downgrade.**",
            ]
        if plan.restore_commands:
            source = (
                "the backup this rollback takes first: no older one from before the deployed "
                "version was found, so a restore only undoes a failed downgrade"
                if db.restore_default == db.backup_path
                else f"`{db.restore_default}`, the newest backup from before the deploy"
            )
            lines += ["", f"If a restore is approved instead (from {source}):", ""]
            lines += _cmd_lines(plan.restore_commands)

    lines += ["", "## 4. Every command, in order", ""]
    lines.append(
        "Host by host with the values filled in. Within a step the hosts run at once (at most "
        "the configured concurrency); the redeploy goes batch by batch."
    )
    groups: list[tuple[StepId, int, list[PlanCommand]]] = []
    for c in plan.commands:
        if not groups or groups[-1][0] is not c.step or groups[-1][1] != c.batch:
            groups.append((c.step, c.batch, []))
        groups[-1][2].append(c)
    for step, batch, cmds in groups:
        title = SPECS[step].title + (f" — batch {batch}" if batch else "")
        lines += ["", f"### {title}", "", *_cmd_lines(cmds)]
    ch = plan.checks
    lines += ["", "## 5. Checks and monitoring", ""]
    lines += [f"- Health: {url}" for url in ch.health] or ["- Health: none configured"]
    lines += [f"- Logs since the restart, error pattern `{ch.error_pattern}`:"]
    lines += [f"  - {entry}" for entry in ch.logs]
    lines += [f"- Smoke: {entry}" for entry in ch.smoke] or ["- Smoke: none configured"]
    lines.append(
        "- Each host's own health URLs (those with a host placeholder) and its logs are checked "
        "as soon as that host is redeployed; rolling, the next batch waits for them. Verify "
        "reuses what passed and checks the rest."
    )
    lines += [f"- Signal: {entry}" for entry in ch.signals]  # metrics and resources judged
    lines.append(
        f"- Monitor for {ch.monitor_duration:g}s, every {ch.monitor_interval:g}s; "
        f"{ch.failure_streak} failed probes in a row alert the thread and the stakeholders."
    )
    lines += ["", "## 6. Approvals", ""]
    for a in plan.approvals:
        who = ", ".join(a.who) or "nobody is listed"
        lines.append(f"- {a.question} — buttons *{a.buttons}* — {a.rule}: {who}")
    lines += ["", "## 7. Afterwards", ""]
    lines.append(
        f"The report is written to the incidents directory and {plan.app} is frozen for deploys "
        "until an approver lifts it."
    )
    return "\n".join(lines) + "\n"
