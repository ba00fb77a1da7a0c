"""Block Kit rendering: pure functions from an incident to Slack messages (`list[dict]`).

Every section stays within Slack's 3,000 characters, every header within 150, every message
within 50 blocks: long content is cut with "…" here, and the notifier uploads what must not be
lost (step output) as a file instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.fronts.slack import text as t
from bot.fronts.slack.ids import ACTION, GROUP_PLAN, Action, ButtonValue
from bot.fronts.slack.text import md, mds
from bot.views import incident as views
from bot.workflow.model import Gate, Incident
from bot.workflow.steps import SPECS

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
FIELD_MAX = 2_000
CONTEXT_MAX = 2_000
VALUE_MAX = 2_000

Blocks = list[dict[str, Any]]

incident_line = t.incident_line
help_text = t.help_text


# ---- building blocks -------------------------------------------------------------------------


def _dicts(blocks: Sequence[Block]) -> Blocks:
    return [b.to_dict() for b in blocks]


def section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=t.truncate(text or " ", t.SECTION_MAX)), block_id=block_id
    )


def sections(lines: Sequence[str]) -> list[Block]:
    return [section(chunk) for chunk in t.pack(lines)]


def text_blocks(text: str) -> Blocks:
    """A long text as sections within Slack's limits."""
    return _dicts(sections(text.splitlines()))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=t.truncate(text or " ", CONTEXT_MAX))])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=t.truncate(text or " ", t.HEADER_MAX)))


def code_section(label: str, code: str, keep: Literal["head", "tail"] = "head") -> SectionBlock:
    room = t.SECTION_MAX - len(label) - 1
    return section(f"{label}\n{t.code_block(t.escape(code), room, keep=keep)}")


def cap(blocks: list[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """At most `limit` blocks: the tail is replaced by a note (the first blocks matter most)."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    return [*kept, context(f"… {len(blocks) - len(kept)} more blocks not shown")]


def button(incident: Incident, gate: Gate, spec: views.ButtonSpec) -> ButtonElement | None:
    value = ButtonValue(i=incident.id, t=gate.token, o=spec.option).dump()
    if len(value) > VALUE_MAX:
        return None  # an option too long to carry: not offered rather than broken
    confirm = None
    if spec.confirm is not None:
        title, body, ok = spec.confirm
        confirm = ConfirmObject(
            title=PlainTextObject(text=t.truncate(title, 100)),
            text=PlainTextObject(text=t.truncate(body, 300)),
            confirm=PlainTextObject(text=t.truncate(ok, 30)),
            deny=PlainTextObject(text="Cancel"),
        )
    return ButtonElement(
        text=PlainTextObject(text=t.truncate(spec.label, t.BUTTON_MAX)),
        action_id=ACTION[spec.choice].value,
        value=value,
        style=spec.style,
        confirm=confirm,
    )


def actions(elements: Sequence[ButtonElement], base_id: str) -> list[Block]:
    """Buttons in order, in as few actions blocks as keep each action_id unique per block."""
    groups: list[list[ButtonElement]] = []
    for el in elements:
        if not groups or el.action_id in {e.action_id for e in groups[-1]} or len(groups[-1]) >= 25:
            groups.append([])
        groups[-1].append(el)
    return [
        ActionsBlock(elements=group, block_id=base_id if i == 0 else f"{base_id}-{i + 1}")
        for i, group in enumerate(groups)
    ]


def gate_block_id(token: str) -> str:
    return f"gate-{token}"


# ---- a plan ------------------------------------------------------------------------------


def plan(plan_id: str, app: str, summary: str) -> tuple[str, Blocks]:
    """The message a plan's file goes with: its summary and the `Run this plan` button."""
    run = _run_button(ButtonValue(i=plan_id, t="plan"), f"the rollback incident of {app}")
    text = (
        f"*Rollback plan* `{plan_id}` — the full plan is in the file in this thread.\n"
        + t.escape(summary)
    )
    blocks: list[Block] = [*sections(text.splitlines()), *actions([run], f"plan-{plan_id}")]
    return f"Rollback plan {plan_id}: {summary}", _dicts(blocks)


def group_plan(group: str, plan_id: str, summary: str) -> tuple[str, Blocks]:
    """The message a release group's plan file goes with: the order, each app's summary, and
    the `Run this plan` button (its value names the group, so that a plan no longer kept can
    still say how to make a new one)."""
    value = ButtonValue(i=plan_id, t=GROUP_PLAN, o=group)
    run = _run_button(value, f"the rollback of the group {group}, every app")
    text = (
        f"*Rollback plan of the group* `{group}` (`{plan_id}`) — the full plan, every app in "
        "the group's order, is in the file in this thread.\n" + t.escape(summary)
    )
    again = f"Or `/rollback {group} [APP=VERSION …] reason…`: it assesses every app again."
    blocks: list[Block] = [
        *sections(text.splitlines()),
        *actions([run], f"plan-{plan_id}"),
        context(again),
    ]
    return f"Rollback plan of the group {group}: {summary}", _dicts(blocks)


def _run_button(value: ButtonValue, what: str) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text="Run this plan"),
        action_id=Action.RUN_PLAN.value,
        value=value.dump(),
        style="primary",
        confirm=ConfirmObject(
            title=PlainTextObject(text="Run this plan?"),
            text=PlainTextObject(text=t.truncate(f"This opens {what} as planned.", 300)),
            confirm=PlainTextObject(text="Run it"),
            deny=PlainTextObject(text="Cancel"),
        ),
    )


# ---- the parent message ----------------------------------------------------------------------


def parent(incident: Incident) -> tuple[str, Blocks]:
    fields = [
        MarkdownTextObject(text=t.truncate(f"*{name}:*\n{md(value)}", FIELD_MAX))
        for name, value in views.field_pairs(incident)
    ]
    blocks: list[Block] = [
        header(t.header_text(incident)),
        *parent_question(incident),
        SectionBlock(fields=fields),
        DividerBlock(),
        *sections(["*Runbook checklist*", *mds(views.checklist_lines(incident))]),
        DividerBlock(),
    ]
    criteria = [
        "*Completion criteria* — do NOT mark complete until all are met",
        *mds(views.criteria_lines(incident)),
    ]
    if note := views.unmet_note(incident):
        criteria.append(f"*{note}*")
    blocks.extend(sections(criteria))
    if monitor := mds(views.monitor_lines(incident.facts.monitor)):
        blocks.extend(sections(["*Monitor*", *monitor]))
    if outcome := views.outcome_line(incident):
        blocks.append(section(md(outcome)))
    blocks.append(
        context(
            f"Incident `{incident.id}` · {views.state_words(incident)} · "
            f"updated {t.fmt_time(incident.updated_at)}"
        )
    )
    return t.parent_fallback(incident), _dicts(cap(blocks))


def parent_block_id(token: str) -> str:
    """The parent's buttons of a gate: not `gate-<token>`, which names the thread's message."""
    return f"ask-{token}"


def parent_question(incident: Incident) -> list[Block]:
    """The open gate's question on the parent, right under its header: one line and the gate's
    own buttons (same action ids and values as the thread's, so a click on either is the same
    answer). Nothing once the gate is answered or closed."""
    asked = views.open_question(incident)
    if asked is None:
        return []
    gate = asked.gate
    elements = [b for spec in asked.buttons if (b := button(incident, gate, spec)) is not None]
    return [section(md(asked.line)), *actions(elements, parent_block_id(gate.token))]


# ---- gates -----------------------------------------------------------------------------------


def _gate_body(incident: Incident, gate: Gate, view: views.GateView, ping: str) -> list[Block]:
    question = f"{ping}\n{md(view.question)}" if ping else md(view.question)
    blocks: list[Block] = [section(question)]
    if view.facts:
        blocks.extend(sections(mds(view.facts)))
    if view.warning:
        blocks.append(section(md(view.warning)))
    for label, code, keep in view.code:
        blocks.append(code_section(md(label), code, keep))
    return blocks


def gate(incident: Incident, gate: Gate, ping: str = "") -> tuple[str, Blocks]:
    """The question of `gate`, its facts, and its buttons (block ids `gate-<token>…`)."""
    view = views.gate_view(incident, gate)
    body = _gate_body(incident, gate, view, ping)
    elements = [b for spec in view.buttons if (b := button(incident, gate, spec)) is not None]
    buttons = actions(elements, gate_block_id(gate.token))
    footer = context(f"Incident `{incident.id}` · {SPECS[gate.step].title}")
    body = body[: MAX_BLOCKS - len(buttons) - 1]
    return t.gate_fallback(incident, gate, ping), _dicts([*body, *buttons, footer])


def gate_minimal(incident: Incident, gate: Gate, ping: str = "") -> tuple[str, Blocks]:
    """The question and the buttons only: the fallback when Slack refused the full gate."""
    view = views.gate_view(incident, gate)
    question = t.truncate(f"{ping} {md(view.question)}" if ping else md(view.question), 1_000)
    elements = [b for spec in view.buttons if (b := button(incident, gate, spec)) is not None]
    blocks = [section(question), *actions(elements, gate_block_id(gate.token))]
    return t.gate_fallback(incident, gate, ping), _dicts(blocks)


def answered(incident: Incident, gate: Gate, answer: str) -> Blocks:
    """The gate message once answered: its question and facts, no buttons, who answered
    (`answer`, in mrkdwn)."""
    view = views.gate_view(incident, gate)
    body = _gate_body(incident, gate, view, "")[: MAX_BLOCKS - 1]
    body.append(section(answer))
    return _dicts(body)


def answered_from_message(blocks: Sequence[Mapping[str, Any]], text: str) -> Blocks:
    """Like `answered`, from the blocks of the posted message (when the gate is not known)."""
    kept: Blocks = []
    for block in blocks:
        if block.get("type") == "actions":
            continue
        clean = dict(block)
        accessory = clean.get("accessory")
        if isinstance(accessory, Mapping) and accessory.get("type") == "button":
            clean.pop("accessory")
        kept.append(clean)
    kept = kept[: MAX_BLOCKS - 1]
    kept.append(section(text).to_dict())
    return kept


# ---- lists, status, home, help ---------------------------------------------------------------


def incident_list(incidents: Sequence[Incident]) -> str:
    if not incidents:
        return "No incidents."
    return "\n".join(t.incident_line(i) for i in incidents[:40])


def incident_status(incident: Incident) -> str:
    """Where one incident stands, as text (an ephemeral answer to `/rollback status`)."""
    return t.truncate("\n".join(mds(views.status_lines(incident))), 3_900)


def status(incidents: Sequence[Incident]) -> Blocks:
    if not incidents:
        return _dicts([section("No open incidents.")])
    blocks: list[Block] = [header("Rollback incidents")]
    blocks.extend(sections([t.incident_line(i) for i in incidents]))
    return _dicts(cap(blocks))


def home(incidents: Sequence[Incident]) -> dict[str, Any]:
    """The App Home tab: open incidents with their state and a link to each thread."""
    blocks: list[Block] = [header("Rewind — open rollbacks")]
    open_ = [i for i in incidents if i.status.open]
    if not open_:
        blocks.append(section("No open incidents. Start one with `/rollback APP VERSION reason`."))
    for incident in open_[:30]:
        blocks.append(section(t.incident_line(incident)))
        current = incident.current_step()
        if current is not None:
            blocks.append(context(md(views.step_line(incident, current))))
    blocks.append(DividerBlock())
    blocks.append(section(t.help_text()))
    return {"type": "home", "blocks": _dicts(cap(blocks, MAX_VIEW_BLOCKS))}


# ---- stakeholder notices ---------------------------------------------------------------------


def notice(
    incident: Incident,
    phase: Literal["start", "end"],
    mentions: Sequence[str] = (),
    members: Sequence[Incident] = (),
) -> tuple[str, Blocks]:
    body = t.notice_text(incident, phase, mentions, members)
    blocks: list[Block] = [section(body)]
    if phase == "end":
        blocks.append(
            context(
                " ".join(
                    f"{views.criterion_mark(incident.criteria.get(c))} {c.value}"
                    for c in incident.criteria
                )
            )
        )
    return t.truncate(t.plain_fallback(body), 2_000), _dicts(blocks)


def alert(incident: Incident, text: str, mentions: Sequence[str] = ()) -> tuple[str, Blocks]:
    link = incident.thread.permalink if incident.thread and incident.thread.permalink else ""
    ping = " ".join(t.mention(m) for m in mentions if m)
    body = f"{ping + ' ' if ping else ''}🚨 *{incident.app}* (incident `{incident.id}`): {text}"
    if link:
        body += f" <{link}|thread>"
    return t.truncate(t.plain_fallback(body), 2_000), _dicts([section(body)])


# ---- step output -----------------------------------------------------------------------------

OutputGroup = tuple[str, str, list[str]]  # (step title, host, lines)


def output(groups: Sequence[OutputGroup], max_blocks: int = 20) -> Blocks | None:
    """Output lines as code blocks, one or more sections per host and step; None when they do
    not fit in `max_blocks` sections (the caller uploads a file instead) — never cut."""
    blocks: list[Block] = []
    for step_title, host, lines in groups:
        label = f"`{host}` · {step_title}"
        room = t.SECTION_MAX - len(label) - 10
        chunk: list[str] = []
        size = 0
        chunks: list[list[str]] = []
        for line in lines:
            safe = t.code_safe(t.escape(line))
            if len(safe) > room:
                return None
            if size + len(safe) + 1 > room and chunk:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(safe)
            size += len(safe) + 1
        if chunk:
            chunks.append(chunk)
        for body in chunks:
            blocks.append(section(f"{label}\n```\n" + ("\n".join(body) or " ") + "\n```"))
            if len(blocks) > max_blocks:
                return None
    return _dicts(blocks)
