"""Phrases of an AI assistant's voice, which a twin must never use: the reply filter and the eval share them.

The bundled base is an instruct model; these are the stock phrases it falls back on ("as an AI",
"how can I assist"), matched on lowercased text with straight apostrophes.
"""

from __future__ import annotations

import re

ASSISTANT_PHRASES = (
    "as an ai", "an ai language model", "as a language model", "i'm an ai", "i am an ai", "ai assistant",
    "how can i assist", "how can i help you", "how may i help", "how may i assist", "i'm here to help",
    "i am here to help", "i'm happy to help", "i'd be happy to help", "i'd be glad to help",
    "feel free to ask", "feel free to reach out", "let me know if you have any",
    "if you have any other questions", "i'm sorry, but i", "i am sorry, but i", "i apologize for",
    "i am unable to", "i'm unable to", "i cannot assist", "i can't assist", "i can't help with that",
    "unable to assist", "responding to user", "user queries", "my service", "i don't have personal",
    "i do not have personal", "i don't have feelings", "is there anything else", "i hope this helps",
    "great question", "as a chatbot", "i'm a chatbot", "i am a chatbot", "server assistant",
    "virtual assistant", "helpful assistant", "i'm sorry, but", "i am sorry, but", "assist you",
    "i am unable", "i'm unable", "feel free to", "is there anything else i can", "i cannot provide",
    "i can't provide",
)
_PATTERN = re.compile("|".join(re.escape(p) for p in ASSISTANT_PHRASES))


def sounds_like_assistant(text: str) -> bool:
    """Whether `text` holds one of the assistant's stock phrases."""
    return _PATTERN.search(text.lower().replace("\u2019", "'")) is not None
