"""A release group's coordination, pure: given every member incident (in the group's order),
what the group does next (`moves`), and the lead's checklist rows (`rows`).

Each member is a normal incident with its own steps, facts, fencing and resume; the machine
holds it at `GROUP_HOLDS` (a `GROUP` gate, no button) until the group lets it go:
- the lead asks the one decision once every member is assessed; the others take its answer;
- each app's code, (database,) redeploy and verify run in the group's order: a member starts
  its code once the one before it is verified (so the one four-eyes approval, the lead's,
  comes first); a shared database's owner that keeps releases or a git checkout has its
  downgrade stored after its redeploy (`bot.workflow.group.step_order`), so it runs after every
  user is redeployed;
- the monitor once every member is verified; each member's report step once every member is
  monitored, the lead's last: it writes the group's one report;
- a member aborted or cancelled stops every other member (each says what was rolled back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.workflow.machine import Event, GroupAbort, GroupGo
from bot.workflow.model import (
    Criterion,
    GateKind,
    Incident,
    MemberRow,
    Status,
    StepId,
    StepRecord,
    StepStatus,
)


@dataclass(frozen=True)
class Move:
    incident: str
    event: Event


def _done(inc: Incident, step: StepId) -> bool:
    return inc.step(step).status.done


def moves(members: Sequence[Incident]) -> list[Move]:
    """What the coordinator applies next; empty when every member waits for a person, runs, or
    is over. Each move answers a member's own `GROUP` gate, so applying one twice is refused by
    the machine and changes nothing."""
    if not members:
        return []
    ended = [m for m in members if m.status in {Status.ABORTED, Status.CANCELLED}]
    if ended:
        first = ended[0]
        return [
            Move(m.id, GroupAbort(by=first.ended_by or first.requested_by, app=first.app))
            for m in members
            if m.status.open
        ]
    lead = members[0]
    out: list[Move] = []
    for i, member in enumerate(members):
        gate = member.gate
        if gate is None or gate.kind is not GateKind.GROUP or not member.status.open:
            continue
        go = _go(members, i, gate.step, lead)
        if go is not None:
            out.append(Move(member.id, go))
    return out


def _go(members: Sequence[Incident], i: int, step: StepId, lead: Incident) -> GroupGo | None:
    member = members[i]
    if step is StepId.DECIDE:
        if member.id == lead.id:
            ready = all(_done(m, StepId.ASSESS) for m in members)
            return GroupGo(step) if ready else None
        if lead.decision is None:
            return None
        option = lead.facts.code_method or ""
        return GroupGo(step, lead.decision, by=lead.step(StepId.DECIDE).by, option=option)
    if step is StepId.CODE:
        ready = i == 0 or _done(members[i - 1], StepId.VERIFY)
        return GroupGo(step) if ready else None
    if step is StepId.MONITOR:
        return GroupGo(step) if all(_done(m, StepId.VERIFY) for m in members) else None
    if step is StepId.REPORT:
        if not all(_done(m, StepId.MONITOR) for m in members):
            return None
        # The lead writes the group's one report, once every other member is done.
        others = [m for m in members if m.id != lead.id]
        if member.id == lead.id and not all(_done(m, StepId.REPORT) for m in others):
            return None
        # A member whose shared database another member downgraded: met once that one's is.
        shared = member.step(StepId.DB_ROLLBACK).status is StepStatus.SKIPPED and any(
            m.criteria.get(Criterion.DATABASE) is True and m.step(StepId.DB_ROLLBACK).status
            is StepStatus.SUCCEEDED for m in members
        )  # fmt: skip
        return GroupGo(step, criteria={Criterion.DATABASE: True} if shared else {})
    return None


def rows(members: Sequence[Incident]) -> list[MemberRow]:
    """Every member's steps for the lead's checklist: status and summary, no host detail."""
    return [
        MemberRow(
            app=m.app,
            incident=m.id,
            status=m.status,
            steps=[StepRecord(id=r.id, status=r.status, summary=r.summary) for r in m.steps],
            environment=m.environment,
            deployed=m.facts.assess.deployed,
            target=m.target or "",
            commits=max(m.facts.assess.commit_count, len(m.facts.assess.commits)),
            migrations=len(m.facts.assess.migrations),
            irreversible=m.facts.assess.irreversible,
        )
        for m in members
    ]
