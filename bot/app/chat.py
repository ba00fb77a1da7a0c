"""Which chat service the terminal reaches, from the settings: Slack (`bot.fronts.slack.chat`)
when a bot token is set, else none. The terminal front knows it only as the `Chat` port."""

from __future__ import annotations

from bot.config.settings import Settings
from bot.fronts.port import Chat


async def chat_for(settings: Settings) -> Chat:
    if settings.slack_bot_token is None:
        from bot.fronts.slack.chat import SlackChat

        return SlackChat(None)  # Slack is the chat service; without a token it cannot answer
    from bot.fronts.slack.chat import quick_chat

    return await quick_chat(settings.token(), settings.slack_api_url)
