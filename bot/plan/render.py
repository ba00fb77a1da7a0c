"""The plan as a Markdown file (posted in Slack, printed by the terminal) and a short summary."""

from __future__ import annotations

from collections.abc import Iterable

from bot.plan.model import Plan, PlanCommand
from bot.workflow.model import StepId
from bot.workflow.steps import SPECS


def filename(plan: Plan) -> str:
    return f"plan-{plan.app}-{plan.target}-{plan.id}.md".replace("/", "-")


def _fence(text: str, lang: str = "") -> list[str]:
    return [f"```{lang}", text.rstrip("\n"), "```"]


def _cmd_lines(cmds: Iterable[PlanCommand]) -> list[str]:
    out: list[str] = []
    for c in cmds:
        mark = "changes" if c.changes else "reads"
        note = f" — {c.note}" if c.note else ""
        out.append(f"- `{c.host}` ({mark}) **{c.name}**{note}")
        out.append(f"  ```sh\n  {c.command}\n  ```")
    return out


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
        lines += _fence(db.sql or f"-- could not be generated:\n{db.sql_error}", "sql")
        if db.recommended == "restore":
            lines += [
                "",
                "**A migration cannot be undone: the approval will recommend a restore from "
                f"`{db.restore_default}` instead of the downgrade.**",
            ]
        if plan.restore_commands:
            lines += ["", f"If a restore is approved instead (from `{db.restore_default}`):", ""]
            lines += _cmd_lines(plan.restore_commands)

    lines += ["", "## 4. Every command, in order", ""]
    lines.append(
        "Host by host with the values filled in. Within a step the hosts run at once (at most "
        "the configured concurrency); the redeploy goes batch by batch."
    )
    step: StepId | None = None
    batch = 0
    for c in plan.commands:
        if c.step is not step:
            step, batch = c.step, 0
            lines += ["", f"### {SPECS[c.step].title}", ""]
        if c.batch and c.batch != batch:
            batch = c.batch
            lines += [f"**Batch {batch}**", ""]
        lines += _cmd_lines([c])
    ch = plan.checks
    lines += ["", "## 5. Checks and monitoring", ""]
    lines += [f"- Health: {url}" for url in ch.health] or ["- Health: none configured"]
    lines += [f"- Logs since the restart, error pattern `{ch.error_pattern}`:"]
    lines += [f"  - {entry}" for entry in ch.logs]
    lines += [f"- Smoke: {entry}" for entry in ch.smoke] or ["- Smoke: none configured"]
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
