"""Every step the runbook runs has a body, and every body belongs to a step that runs."""

from __future__ import annotations

from bot.steps.registry import bodies
from bot.workflow.facts import Facts
from bot.workflow.steps import STEPS


def test_every_step_spec_with_a_body_has_one_and_no_other_has() -> None:
    found = bodies()
    assert {s.id for s in STEPS if s.has_body} == set(found)
    assert all(callable(body) for body in found.values())


def test_every_step_with_a_body_has_a_facts_slot() -> None:
    facts = Facts()
    for spec in STEPS:
        if spec.has_body:
            assert facts.of_step(spec.id.value) is not None, spec.id
