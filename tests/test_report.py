"""The incident report: its content, the file, the commit in the incidents repository, the push."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.fronts.slack.directory import SlackDirectory
from bot.ports import AuditEntry
from bot.steps import report
from bot.views.report import render_report
from bot.workflow.facts import Facts, MonitorFacts
from bot.workflow.model import (
    Approval,
    Criterion,
    Decision,
    GateKind,
    HostResult,
    Incident,
    StepId,
    StepStatus,
)
from bot.workflow.steps import STEPS
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident
from tests.slack_fake import SlackFake

OPENED = datetime(2024, 5, 2, 10, 0, 0, tzinfo=UTC)


def git(*args: str, cwd: Path) -> str:
    env = {
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "GIT_AUTHOR_NAME": "Pat Person",
        "GIT_AUTHOR_EMAIL": "pat@example.com",
        "GIT_COMMITTER_NAME": "Pat Person",
        "GIT_COMMITTER_EMAIL": "pat@example.com",
    }
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def recovered_incident(**kw: Any) -> Incident:
    inc = make_incident(created_at=OPENED, updated_at=OPENED + timedelta(minutes=21), **kw)
    inc.facts = Facts.model_validate(
        {
            "assess": {
                "deployed": "v1.5.0",
                "target": "v1.4.2",
                "deployed_by_host": {"web1": "v1.5.0", "web2": "v1.5.0"},
                "target_sha": "0123456789abcdef0123456789abcdef01234567",
                "migrations": [{"revision": "d4e5f6a1b2c3"}, {"revision": "c3d4e5f6a1b2"}],
            },
            "code": {"hotfix_ref": "hotfix/rollback-myapp-v1.4.2-ab12"},
            "monitor": {
                "elapsed": 900,
                "availability": 99.5,
                "error_count": 0,
                "alerts": 1,
                "urls": [
                    {
                        "url": "http://10.0.0.11:8000/healthz",
                        "host": "web1",
                        "probes": 30,
                        "availability": 99.0,
                        "p50_ms": 12.3,
                        "p95_ms": 48.0,
                    }
                ],
            },
        }
    )
    inc.decision = Decision.ROLL_BACK
    inc.db_method = "downgrade"
    inc.approvals.append(
        Approval(kind=GateKind.APPROVE_DB, user="U0ALICE", at=OPENED + timedelta(minutes=5))
    )
    minute = 0
    for rec in inc.steps:
        if rec.id is StepId.REPORT:
            break
        minute += 2
        rec.status = StepStatus.SUCCEEDED
        rec.finished_at = OPENED + timedelta(minutes=minute)
        rec.summary = f"{rec.id.value} done"
    inc.step(StepId.DECIDE).summary = "Roll back (revert)"
    inc.step(StepId.DECIDE).by = "U0CAROL"
    inc.step(StepId.REDEPLOY).hosts["web1"] = HostResult(host="web1", ok=True, summary="ok")
    for c in Criterion:
        inc.criteria[c] = c is not Criterion.REPORT
    return inc


TIMELINE: list[AuditEntry] = [
    {"at": "2024-05-02T10:00:00+00:00", "who": "U0CAROL", "what": "started", "result": ""},
    {"at": "2024-05-02T10:05:00+00:00", "who": "U0ALICE", "what": "approve db", "result": "ok"},
    {"at": "2024-05-02T10:12:00+00:00", "who": "worker-1", "what": "step failed | redeploy",
     "result": "`restart` failed\non web2"},
]  # fmt: skip


def test_report_content() -> None:
    inc = recovered_incident(major=True)
    inc.step(StepId.REPORT).status = StepStatus.RUNNING  # the report is written by its own step
    inc.approvals.insert(0, Approval(kind=GateKind.APPROVE_START, user="U0BOB", choice="approve"))
    names = {"U0CAROL": "carol", "U0ALICE": "alice", "U0BOB": "bob"}
    text = render_report(inc, TIMELINE, STEPS, lambda uid: names.get(uid, uid))

    assert text.startswith("# Incident report: rollback of myapp from v1.5.0 to v1.4.2")
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == [
        "## What failed",
        "## Why we rolled back",
        "## Impact",
        "## Timeline",
        "## Steps",
        "## Completion criteria",
        "## Next steps",
    ]
    assert "checkout returns 500 since the 1.5.0 deploy" in text
    assert "- On the hosts: web1 `v1.5.0`, web2 `v1.5.0`" in text
    assert "`c3d4e5f6a1b2`" in text
    assert "- Decision: Roll back (revert), chosen by @carol" in text
    assert "- @alice approved the database rollback at 2024-05-02 10:05:00 UTC" in text
    assert "- @bob approved the start of the production rollback at" in text
    assert "| Opened | 2024-05-02 10:00:00 UTC by @carol |" in text
    assert "| 2024-05-02 10:05:00 UTC | @alice | approve db | ok |" in text
    assert "<@" not in text  # read in git, not in Slack
    assert "availability 99.5%" in text and "1 alert(s)" in text
    assert "| http://10.0.0.11:8000/healthz | web1 | 30 | 99% | 12 ms | 48 ms |" in text
    # redeploy finished 14 min after opening (7th step), verify at 16 min
    assert "(14 min 00 s after the incident was opened)" in text
    assert "time to recovery 16 min 00 s" in text
    assert "| 2024-05-02 10:12:00 UTC | worker-1 | step failed \\| redeploy |" in text
    assert "`restart` failed<br>on web2" in text  # one table row per entry
    assert "| Redeploy previous version | Step 4 | ✅ done | redeploy done |" in text
    assert "| Incident report | Post-Rollback Actions | ✅ done | this report |" in text
    for wrong in ("Outcome | —", "Closed | open", "Approved approve", "(approve)", "⏳ running"):
        assert wrong not in text, wrong
    assert "| Written | " in text and "as the last step |" in text
    assert all(f"- ✅ {c.value}" in text for c in Criterion)
    assert "**All criteria met.**" in text
    assert "| Status | recovered: all completion criteria met |" in text
    for question in (
        "What caused the issue?",
        "How to fix it properly?",
        "How to prevent it in the future?",
        "When to attempt deployment again?",
    ):
        assert f"- [ ] {question}" in text
    assert "`/rollback unfreeze myapp`" in text
    assert "complete the postmortem" in text


def test_report_says_what_is_not_met() -> None:
    inc = recovered_incident()
    inc.criteria[Criterion.LOGS] = False
    inc.criteria[Criterion.MONITORED] = None
    inc.facts.monitor = MonitorFacts()
    text = render_report(inc, [], STEPS)
    assert "- ❌ No errors in logs" in text
    assert "- ⬜ Monitored for the set time" in text
    assert "**Not complete**: No errors in logs, Monitored for the set time." in text
    assert "_The audit trail is empty._" in text
    assert "- Monitoring: no figures" in text


@pytest.fixture
def incidents_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A bare 'remote' and a checkout of it; a person has something staged in the checkout."""
    remote = tmp_path / "incidents.git"
    git("init", "--quiet", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    work = tmp_path / "ops"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    git("checkout", "--quiet", "-b", "main", cwd=work)
    (work / "notes.txt").write_text("draft, not for the bot's commit\n")
    git("add", "notes.txt", cwd=work)
    return remote, work


def _ctx(tmp_path: Path, incidents_dir: str, inc: Incident, notifier: RecordingNotifier) -> Any:
    apps = make_apps(
        {
            "repo": "/srv/repo",
            "incident_channel": "C0INCIDENT",
            "ssh": {"transport": "local"},
            "approvers": ["U0ALICE", "U0BOB"],
            "hosts": [{"name": "web1", "address": "127.0.0.1"}],
            "deploy": {"strategy": "systemd", "workdir": "/srv/app", "service": "myapp"},
        },
        incidents_dir,
    )

    class NoHosts:
        async def run(self, *a: Any, **k: Any) -> Any:
            raise AssertionError("the report step runs nothing on the hosts")

        async def close(self) -> None:
            return None

    return make_ctx(
        apps, NoHosts(), step=StepId.REPORT, incident=inc, notifier=notifier, timeline=TIMELINE
    )


async def test_report_committed_and_pushed(
    tmp_path: Path, incidents_repo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, work = incidents_repo
    monkeypatch.chdir(tmp_path)  # a relative incidents.dir is taken from the current directory
    notifier = RecordingNotifier()
    inc = recovered_incident(major=True)
    outcome = await report.run(_ctx(tmp_path, "ops/incidents/", inc, notifier))

    path = work / "incidents" / "rollback-20240502-myapp-ab12.md"
    postmortem = work / "incidents" / "postmortem-20240502-myapp-ab12.md"
    assert outcome.criteria == {Criterion.REPORT: True}
    assert outcome.facts.path == str(path)
    assert outcome.facts.postmortem_path == str(postmortem)
    assert "## Timeline" in path.read_text()
    assert "Plan the fix" in postmortem.read_text()
    sha = outcome.facts.commit
    assert sha == git("rev-parse", "HEAD", cwd=work)
    files = git("show", "--name-only", "--format=%s", sha, cwd=work).splitlines()
    assert files[0] == "Incident report: myapp rolled back to v1.4.2 (ab12)"
    assert sorted(f for f in files[1:] if f) == [
        "incidents/postmortem-20240502-myapp-ab12.md",
        "incidents/rollback-20240502-myapp-ab12.md",
    ]
    assert git("diff", "--cached", "--name-only", cwd=work) == "notes.txt"  # left staged
    assert outcome.facts.pushed is True
    assert git("rev-parse", "main", cwd=remote) == sha
    assert [u.filename for u in notifier.uploads] == [path.name, postmortem.name]
    assert notifier.uploads[0].content == path.read_text()
    assert f"commit `{sha[:10]}` (pushed)" in notifier.uploads[0].comment

    # Again (Retry): the report is rewritten and committed again; the postmortem is kept.
    postmortem.write_text("# Postmortem\n\nRoot cause: a flag.\n")
    git("commit", "--quiet", "-m", "postmortem", "--", postmortem.name, cwd=postmortem.parent)
    inc.facts.monitor.availability = 100.0
    again = await report.run(_ctx(tmp_path, "ops/incidents/", inc, notifier))
    assert again.facts.commit != sha
    assert "availability 100%" in path.read_text()
    assert "Root cause: a flag." in postmortem.read_text()


async def test_plain_directory_and_failing_push(
    tmp_path: Path, incidents_repo: tuple[Path, Path]
) -> None:
    notifier = RecordingNotifier()
    plain = tmp_path / "plain"
    outcome = await report.run(_ctx(tmp_path, str(plain), recovered_incident(), notifier))
    assert (plain / "rollback-20240502-myapp-ab12.md").exists()
    assert outcome.facts.commit == ""
    assert "not a git checkout" in notifier.uploads[0].comment
    assert outcome.criteria == {Criterion.REPORT: True}

    _, work = incidents_repo
    git("remote", "set-url", "origin", str(tmp_path / "gone.git"), cwd=work)
    notifier = RecordingNotifier()
    outcome = await report.run(_ctx(tmp_path, str(work), recovered_incident(), notifier))
    assert outcome.facts.commit == git("rev-parse", "HEAD", cwd=work)
    assert outcome.facts.pushed is False
    assert any("the push failed" in s for s in notifier.said)
    assert outcome.criteria == {Criterion.REPORT: True}  # not fatal


async def test_the_committed_report_names_people_from_the_apps_file_then_slack(
    tmp_path: Path, slack: SlackFake
) -> None:
    """The apps file's `people:` names carol; Slack's users.info names alice (its display name);
    an id neither knows is written as the id, without Slack's markup."""
    slack.users["U0ALICE"] = {"profile": {"display_name": "Alice W", "real_name": "Alice"}}
    slack.fail_next("users.info", ok_false="user_not_found")  # U0ABSENT, asked first
    inc = recovered_incident()
    inc.approvals.append(Approval(kind=GateKind.APPROVE_START, user="U0ABSENT", choice="approve"))
    ctx = _ctx(tmp_path, str(tmp_path / "incidents"), inc, RecordingNotifier())
    ctx.apps.people["carol"] = "U0CAROL"
    ctx.people = SlackDirectory(AsyncWebClient(token="xoxb-test", base_url=slack.api_url))

    outcome = await report.run(ctx)

    text = Path(outcome.facts.path).read_text()
    assert "| Opened | 2024-05-02 10:00:00 UTC by @carol |" in text
    assert "- Decision: Roll back (revert), chosen by @carol" in text
    assert "- @Alice W approved the database rollback at" in text
    assert "- @U0ABSENT approved the start of the production rollback at" in text
    assert "<@" not in text
    asked = sorted(c.args["user"] for c in slack.calls_to("users.info"))
    assert asked == ["U0ABSENT", "U0ALICE"]  # carol is in the apps file: Slack is not asked
