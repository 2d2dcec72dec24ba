"""Text commands (`/twin @ana hi there`, `/avatar me style:lorelei`) parsed by the declared options.

Telegram and the console have no typed options, so the same declarations drive a small parser:
`name:value` sets an option by name; other words fill the options in order; an option marked
`rest` takes the rest of the line; a `user` option is filled positionally only by an `@mention`.
"""

from __future__ import annotations

import re
from typing import Any

from bot.commands.context import UserError
from bot.commands.types import CommandSpec, OptionSpec

_COMMAND = re.compile(r"^/(?P<name>[A-Za-z_]+)(?:@(?P<bot>\w+))?(?:\s+(?P<rest>.*))?$", re.DOTALL)
_TRUE = {"yes", "y", "true", "1", "on"}
_FALSE = {"no", "n", "false", "0", "off"}


def split_command(text: str) -> tuple[str, str | None, str] | None:
    """('name', 'botname' or None, 'rest of line') for a line starting with /name, else None."""
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    return match["name"].lower(), match["bot"], (match["rest"] or "").strip()


def convert(option: OptionSpec, raw: str) -> Any:
    """The typed value of one option, or a UserError saying what was expected."""
    if option.type == "int":
        try:
            return int(raw)
        except ValueError:
            raise UserError(f"{option.name} should be a whole number, not {raw!r}.") from None
    if option.type == "bool":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise UserError(f"{option.name} should be yes or no, not {raw!r}.")
    if option.type == "choice" and option.choices:
        value = raw.lower()
        if value not in option.choices:
            raise UserError(f"{option.name} should be one of: {', '.join(option.choices)} (not {raw!r}).")
        return value
    if option.type == "user":
        return raw.removeprefix("@")
    return raw


def parse_options(spec: CommandSpec, rest: str) -> dict[str, Any]:
    """Fill the spec's options from the text after the command name."""
    by_name = {o.name: o for o in spec.options if o.type != "attachment"}
    args: dict[str, Any] = {}
    words = rest.split()
    positional: list[str] = []
    for index, word in enumerate(words):
        name, sep, value = word.partition(":")
        option = by_name.get(name.lower()) if sep else None
        if option is not None and value and not option.rest:
            args[option.name] = convert(option, value)
        elif option is not None and option.rest:
            args[option.name] = " ".join([value, *words[index + 1 :]]).strip()
            break
        else:
            positional.append(word)
    pending = [o for o in by_name.values() if o.name not in args]
    while positional and pending:
        option = pending.pop(0)
        if option.rest:
            args[option.name] = " ".join(positional)
            positional = []
        elif option.type == "user":
            if positional[0].startswith("@"):
                args[option.name] = convert(option, positional.pop(0))
        else:
            args[option.name] = convert(option, positional.pop(0))
    if positional:
        raise UserError(f"I didn't understand {' '.join(positional)!r}. Usage: {spec.usage or '/' + spec.name}")
    return args


def check_required(spec: CommandSpec, args: dict[str, Any]) -> None:
    missing = [o.name for o in spec.options if o.required and not args.get(o.name)]
    if missing:
        raise UserError(f"Missing {', '.join(missing)}. Usage: {spec.usage or '/' + spec.name}")
