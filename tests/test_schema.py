"""Incidents stored by an older Rewind still load (and render) after an upgrade."""

from __future__ import annotations

import json
from pathlib import Path

from bot.fronts.slack import blocks
from bot.views import incident as views
from bot.workflow import said
from bot.workflow.facts import AnswerFact, Facts
from bot.workflow.messages import message
from bot.workflow.model import Status, StepId
from bot.workflow.render_text import plain
from bot.workflow.schema import CURRENT, load_incident, migrate
from tests.slack_fake import all_text

V1 = Path(__file__).parent / "data" / "incident_v1.json"


def test_a_v1_incident_loads_with_every_fact_in_its_step_model() -> None:
    inc = load_incident(V1.read_text())
    assert inc.schema_version == CURRENT
    f = inc.facts
    assert f.prerequisites.notified_start == ["C0STAKE"]
    assert f.assess.deployed == "v1.5.0" and f.assess.target == "v1.4.2"
    assert f.assess.commits[0].subject == "Release 1.5.0" and f.assess.commits[0].merge
    assert f.assess.migrations[0].revision == "d4e5f6a1b2c3"
    assert f.code.hotfix_sha.startswith("4444") and f.code.method == "revert"
    assert f.code_method == "revert"
    assert f.db.backup is not None and f.db.backup.size == 2048 and f.db.backup.own
    assert f.db.restore_default == "/var/backups/myapp-a1b2c3.sql"
    assert f.db.recommended == "downgrade" and f.db.sql_preview == "DROP TABLE coupons;"
    assert f.answered == {"tok000": AnswerFact(choice="Roll back", by="U0CAROL")}
    assert inc.target == "v1.4.2"


def test_the_gate_it_waits_on_still_renders_its_facts() -> None:
    inc = load_incident(V1.read_text())
    assert inc.gate is not None
    _, msg = blocks.gate(inc, inc.gate)
    shown = all_text({"blocks": msg})
    assert "myapp-a1b2c3.sql` · 2.0 KiB" in shown
    assert "d4e5 → c3d4: create table coupons" in shown
    assert "DROP TABLE coupons;" in shown
    assert views.deployed(inc) == "v1.5.0"


def test_current_json_round_trips_and_migrating_twice_changes_nothing() -> None:
    inc = load_incident(V1.read_text())
    again = load_incident(inc.model_dump_json())
    assert again == inc
    data = json.loads(inc.model_dump_json())
    assert migrate(data) == data


def test_an_empty_v1_incident_gets_empty_step_models() -> None:
    data = json.loads(V1.read_text())
    data["facts"] = {}
    assert load_incident(json.dumps(data)).facts == Facts()


def _v2_aborted() -> str:
    """An aborted incident as version 2 stored it: Slack mentions inside its words."""
    data = migrate(json.loads(V1.read_text()))
    data["schema_version"] = 2
    for rec in data["steps"]:
        if rec["id"] == "decide":
            rec["summary"] = "Roll back, chosen by <@U0CAROL> (revert)"
    data["facts"]["answered"] = {
        "tok000": "Roll back by <@U0CAROL>",
        "tok001": "abort by <@U0DAVE>",
    }
    data.update(status="aborted", gate=None, outcome="Aborted by <@U0DAVE>. Rolled back: nothing.")
    return json.dumps(data)


def test_a_v2_incident_keeps_who_did_what_apart_from_the_words() -> None:
    inc = load_incident(_v2_aborted())
    assert inc.schema_version == CURRENT == 3
    assert inc.facts.answered["tok001"] == AnswerFact(choice="abort", by="U0DAVE")
    decide = inc.step(StepId.DECIDE)
    assert (decide.summary, decide.by) == ("Roll back (revert)", "U0CAROL")
    assert (inc.outcome, inc.ended_by) == ("Rolled back: nothing.", "U0DAVE")
    assert inc.status is Status.ABORTED
    names = {"U0CAROL": "carol", "U0DAVE": "dave"}.__getitem__
    assert plain(said.outcome(inc), names) == "Aborted by @dave. Rolled back: nothing."
    shown = plain(message(*said.summary(inc, decide)), names)
    assert shown == "Roll back (revert), chosen by @carol"
    assert "<@" not in inc.model_dump_json()


def test_a_stored_gate_error_loads_typed_whatever_shape_it_was_written_in() -> None:
    """`Gate.facts` was a free dict: an error as stored then (full, partial, bare words, none)
    loads as the same `ErrorInfo`, and a Retry gate's error round-trips."""
    from bot.views.incident import error_of

    data = migrate(json.loads(V1.read_text()))
    shapes = {
        "full": {"error": {"what": "redeploy failed", "host": "web1", "hint": "Retry."}},
        "partial": {"error": {"hint": "Look at the log."}},
        "words": {"error": "redeploy failed"},
        "none": {},
    }
    seen = {}
    for name, facts in shapes.items():
        data["gate"] = {**data["gate"], "kind": "retry", "facts": facts}
        inc = load_incident(json.dumps(data))
        assert inc.gate is not None
        seen[name] = error_of(inc.gate).plain()
        assert load_incident(inc.model_dump_json()) == inc
    assert seen == {
        "full": "redeploy failed on web1. Retry.",
        "partial": "A step failed. Look at the log.",
        "words": "redeploy failed.",
        "none": "A step failed.",
    }
