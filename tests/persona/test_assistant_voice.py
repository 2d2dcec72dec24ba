"""The assistant-voice phrase list catches the base model's stock phrases and not people chatting."""

from __future__ import annotations

import pytest

from persona.assistant_voice import sounds_like_assistant


@pytest.mark.parametrize("text", [
    "I'm sorry if I was unable to assist you because of some issues while responding to user queries",
    "I will not discuss that on my service",
    "As an AI language model, I don't have a weekend.",
    "How can I assist you today?",
    "I\u2019m here to help!",
    "Feel free to ask me anything",
])
def test_assistant_phrases_are_caught(text: str) -> None:
    assert sounds_like_assistant(text)


@pytest.mark.parametrize("text", [
    "lol what", "ugh mondays", "I think I broke the printer", "no, I ate it. sorry!!",
    "can you help me move on saturday?", "Oh whaaat", "i'm sorry i missed your call",
])
def test_people_chatting_are_not(text: str) -> None:
    assert not sounds_like_assistant(text)
