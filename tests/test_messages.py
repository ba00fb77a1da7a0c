"""One message, three fronts: Slack pings ids, the terminal and the report show names."""

from __future__ import annotations

from bot.fronts.slack import mrkdwn
from bot.workflow import render_text, said
from bot.workflow.messages import (
    ChannelRef,
    Code,
    CodeBlock,
    Emphasis,
    Link,
    Mark,
    Mention,
    Status,
    bullets,
    message,
    of_whole_group,
    para,
)
from bot.workflow.model import GateKind, GroupRef
from tests.fakes import make_incident

MSG = message(
    Mark(Status.OK),
    " ",
    Mention("U0CAROL"),
    " approved ",
    Emphasis("the database downgrade"),
    " of ",
    Code("myapp"),
    ".",
    bullets([para("told ", ChannelRef("C0STAKE")), para(Link("https://x/t", "thread"))]),
    CodeBlock("DROP TABLE coupons; -- a <b> & c"),
)
NAMES = {"U0CAROL": "carol", "C0STAKE": "stakeholders"}


def test_slack_gets_mrkdwn_with_ids_and_escaped_text() -> None:
    text = mrkdwn.render(MSG)
    assert text.startswith(":white_check_mark: <@U0CAROL> approved *the database downgrade*")
    assert "`myapp`" in text and "• told <#C0STAKE>" in text and "• <https://x/t|thread>" in text
    assert "a &lt;b&gt; &amp; c" in text
    assert mrkdwn.render(message(Mention("S0ONCALL"))) == "<!subteam^S0ONCALL>"


def test_the_terminal_shows_names_and_no_markup() -> None:
    text = render_text.plain(MSG, lambda i: NAMES.get(i, i))
    assert text.startswith("✅ @carol approved the database downgrade of myapp.")
    assert "• told #stakeholders" in text and "• thread (https://x/t)" in text
    assert "<@" not in text and "*" not in text


def test_the_report_gets_markdown_with_names() -> None:
    text = render_text.markdown(MSG, lambda i: NAMES.get(i, i))
    assert "@carol approved **the database downgrade** of `myapp`." in text
    assert "- told #stakeholders" in text and "[thread](https://x/t)" in text
    assert "```\nDROP TABLE coupons;" in text


def test_a_group_members_messages_name_its_app_where_they_enter_the_thread() -> None:
    """`said.named`: a member's message, question or file names its app; a single app's and the
    group's own are unchanged."""
    group = GroupRef(name="shop", lead="a1", members=["a1", "b2"], apps=["storefront", "myapp"])
    member, single = make_incident(group=group), make_incident()
    code = message(CodeBlock("v1.5.0"))
    # A message that names its app early is left as it is (the app would be said twice).
    assert said.named(member, MSG) == MSG
    assert mrkdwn.render(said.named(member, message("Backup taken"))) == "`myapp` · Backup taken"
    late = message("x" * 60, " of `myapp`")
    assert mrkdwn.render(said.named(member, late)).startswith("`myapp` · x")
    assert mrkdwn.render(said.named(member, code)) == "`myapp` ·\n```\nv1.5.0\n```"
    assert said.named(single, MSG) == MSG and said.named(member, of_whole_group(MSG)).blocks == (
        MSG.blocks
    )
    question = para("Roll back?")
    assert said.named_question(member, question, GateKind.RETRY).parts[0] == "`myapp` · "
    assert said.named_question(member, question, GateKind.DECISION) == question
    assert said.named_question(single, question, GateKind.RETRY) == question
    assert said.named_file(member, "t.sql", "") == "`myapp` · t.sql"
    assert said.named_file(single, "t.sql", "") == ""
