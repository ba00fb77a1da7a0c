"""What a person typed, checked before anything starts: a reason reads as a sentence, and no
word is a paste."""

from __future__ import annotations

from bot.workflow.errors import UserFacingError

REASON_MAX = 1000  # characters: a reason is a sentence or two, not a log paste
WORD_MAX = 100  # characters: no tag, app name or word of a reason is longer


def check_reason(reason: str) -> None:
    """A reason is required (the runbook's "confirm the issue"), and reads as a sentence."""
    reason = reason.strip()
    if not reason:
        raise UserFacingError(
            "What broke? The runbook asks to confirm the issue first: add a reason, e.g. "
            "`checkout returns 500`. Nothing was started."
        )
    if len(reason) > REASON_MAX:
        raise UserFacingError(
            f"The reason is {len(reason):,} characters; keep it to {REASON_MAX:,} (a sentence "
            "or two: what users see). Link to logs instead of pasting them. Nothing was started."
        )
    check_words(reason)


def check_words(text: str) -> None:
    """No word over WORD_MAX characters: it is a paste or a typo, never a tag or a reason."""
    for word in text.split():
        if len(word) > WORD_MAX:
            raise UserFacingError(
                f"`{word[:40]}…` is {len(word):,} characters long; no word of a command may be "
                f"longer than {WORD_MAX}. Check what was pasted. Nothing was started."
            )
