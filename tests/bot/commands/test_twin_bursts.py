"""A twin's burst through the command layer: each message goes out on its own, as the twin's, and the
chat remembers them all. The model's side of bursts is tested in tests/persona/serving and measured
by `twinbot eval`; here a twin service that always bursts stands in for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from persona.serving.service import ReplyRequest
from tests.bot.commands.recording import command_layer, say
from twinbot.settings import Settings


class BurstingTwins:
    """Answers every message with the same burst and keeps the requests it got."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        self.requests: list[ReplyRequest] = []

    async def replies(self, req: ReplyRequest) -> AsyncIterator[str]:
        self.requests.append(req)
        for message in self.messages:
            yield message


async def test_a_burst_is_sent_message_by_message_and_each_is_the_twins(settings: Settings) -> None:
    async with command_layer(settings) as layer:
        twins = BurstingTwins(["wait", "what?", "no way"])
        layer.ctx.services.twins = twins  # type: ignore[assignment]
        await say(layer, "/consent learn", user="u1", name="Ana")
        await say(layer, "/consent share", user="u1", name="Ana")

        out = await say(layer, "/twin guess who won", user="u1", name="Ana")
        assert out.texts == ["wait", "what?", "no way"]
        assert all(m.reply.speaker is not None and m.reply.kind == "twin" for m in out.sent)

        # A reply to any message of the burst talks to the same twin, which sees the whole burst.
        again = await say(layer, "me!", user="u2", name="Bo", reply_to_message_id=out.sent[1].message_id)
        assert again.texts == ["wait", "what?", "no way"]
        history = [(turn.speaker, turn.text, turn.is_owner) for turn in twins.requests[-1].history]
        assert history == [("Ana", "guess who won", True), ("Ana", "wait", True), ("Ana", "what?", True),
                           ("Ana", "no way", True)]
        assert twins.requests[-1].text == "me!"


def test_bursting_twins_has_the_services_replies_signature() -> None:
    """The stand-in stays what the command layer calls: TwinService.replies(request), messages one by one."""
    import inspect

    from persona.serving.service import TwinService

    ours, theirs = inspect.signature(BurstingTwins.replies), inspect.signature(TwinService.replies)
    assert list(ours.parameters) == list(theirs.parameters) and ours.return_annotation == theirs.return_annotation
    assert inspect.isasyncgenfunction(BurstingTwins.replies) and inspect.isasyncgenfunction(TwinService.replies)
