"""The `twinbot` command: `run` starts the bot; the admin subcommands reuse the command layer.

Every admin subcommand acts as a console user (platform `console`) and goes through the same
commands a chat user has, so the CLI can never do something the commands would refuse.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.commands import CommandLayer, Event, Invocation, OutFile, Reply, open_services
from bot.console_adapter import ConsoleOutbox, local_attachment
from persona.evaluation.options import add_eval_arguments
from twinbot.logs import setup_logging, stderr_to_file
from twinbot.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)


class CliError(Exception):
    """A one-line failure: printed as `twinbot: …`, exit status 1."""


class CliOutbox(ConsoleOutbox):
    """Prints replies; writes the (single) produced file to --out; remembers whether anything failed."""

    def __init__(self, out_path: Path | None) -> None:
        super().__init__(sys.stdout, Path("."))
        self.out_path = out_path
        self.failed: str | None = None

    def show(self, reply: Reply) -> None:
        """An error, sent or edited into a progress message, is kept for `twinbot: …` and the exit status."""
        if reply.kind == "error":
            self.failed = reply.text
        else:
            super().show(reply)

    async def save(self, item: OutFile) -> Path:
        if self.out_path is None:
            raise CliError("this command produces a file: give --out PATH")
        await asyncio.to_thread(self.out_path.write_bytes, item.data)
        return self.out_path


@dataclass
class Job:
    """One admin action: which command, with what options, needing which services."""

    command: str
    args: dict[str, Any]
    needs_model: bool = False
    needs_avatars: bool = False
    may_create_user: bool = False


def console_event(user: str, text: str = "", attachments: tuple = ()) -> Event:
    return Event(platform="console", user_id=user, user_name=user, chat_id="cli", is_dm=True, text=text,
                 attachments=attachments)


async def run_command(settings: Settings, user: str, job: Job, out_path: Path | None) -> int:
    async with open_services(settings, with_model=job.needs_model, with_avatars=job.needs_avatars,
                             with_trainer=False) as services:
        if not job.may_create_user and await services.store.users.lookup("console", user) is None:
            raise CliError(f"unknown user {user!r} (console users are created by `twinbot consent --user {user} learn`)")
        layer = CommandLayer(settings, services)
        outbox = CliOutbox(out_path)
        try:
            await layer.dispatch(Invocation(job.command, job.args, console_event(user)), outbox)
        finally:
            await layer.close()
    if outbox.failed:
        raise CliError(outbox.failed)
    return 0


async def chat(settings: Settings, user: str) -> int:
    """One twin reply per stdin line, for scripts (lines are not stored: this is not the user talking).

    A line that gets no reply is reported as `twinbot: …` and the exit status is 1, so scripts can tell.
    """
    async with open_services(settings, with_avatars=False, with_trainer=False) as services:
        if await services.store.users.lookup("console", user) is None:
            raise CliError(f"unknown user {user!r}")
        layer = CommandLayer(settings, services)
        outbox = CliOutbox(None)
        status = 0
        try:
            for line in sys.stdin:
                if line.strip():
                    await layer.dispatch(Invocation("twin", {"text": line.strip()}, console_event(user)), outbox)
                    if outbox.failed:
                        print(f"twinbot: {outbox.failed}", file=sys.stderr)
                        outbox.failed, status = None, 1
        finally:
            await layer.close()
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinbot", description="A digital-twin chat bot.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start the bot (console twin when no platform token is set)")
    run.add_argument("--verbose", action="store_true", help="console twin: logs to stderr, not the log file")

    def user_cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--user", required=True, help="console user name")
        return p

    user_cmd("consent", "grant or withdraw consent").add_argument(
        "scope", choices=["learn", "share", "unlearn", "unshare", "off"])
    p = user_cmd("import", "import a chat export")
    p.add_argument("--as", dest="as_participant", help="which participant of the export you are (name or id)")
    p.add_argument("file", type=Path)
    user_cmd("train", "train the user's twin now, with a progress bar")
    user_cmd("chat", "one twin reply per line of stdin")
    p = user_cmd("avatar", "render the twin's face (or variations, one like a picture, or a morph)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--style")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--grid", type=int, choices=[4], help="4 variations in a 2x2 grid")
    shown.add_argument("--like", type=Path, metavar="PICTURE", help="the face most like this picture")
    shown.add_argument("--keep", type=int, metavar="N", help="keep face N of the last --grid or --like")
    shown.add_argument("--morph", action="store_true", help="an animated GIF morph")
    p = user_cmd("export", "write a zip of everything kept about the user")
    p.add_argument("--out", type=Path, required=True)
    p = user_cmd("forget", "delete everything kept about the user")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    user_cmd("status", "what is kept about the user")
    add_eval_arguments(sub.add_parser("eval", help="train twins on a corpus of many speakers; measure them and "
                                                   "their replies"))
    return parser


def job_for(args: argparse.Namespace) -> Job:
    """Translate parsed arguments into the equivalent chat command."""
    if args.cmd == "consent":
        return Job("consent", {"scope": args.scope}, may_create_user=True)
    if args.cmd == "import":
        if not args.file.is_file():
            raise CliError(f"no such file: {args.file}")
        file_args: dict[str, Any] = {"file": local_attachment(args.file)}
        if args.as_participant:
            file_args["as"] = args.as_participant
        return Job("import", file_args)
    if args.cmd == "avatar":
        mode = ("morph" if args.morph else "variations" if args.grid else "like" if args.like
                else "keep" if args.keep is not None else "me")
        avatar_args: dict[str, Any] = {"mode": mode, **({"style": args.style} if args.style else {})}
        if args.like:
            if not args.like.is_file():
                raise CliError(f"no such file: {args.like}")
            avatar_args["picture"] = local_attachment(args.like)
        if args.keep is not None:
            avatar_args["pick"] = args.keep
        return Job("avatar", avatar_args, needs_avatars=True, may_create_user=True)
    if args.cmd == "export":
        return Job("export", {}, needs_avatars=True)
    if args.cmd == "forget":
        return Job("forget", {"confirm": True}, needs_avatars=True)
    return Job(args.cmd, {})


def confirm_forget(user: str) -> bool:
    if not sys.stdin.isatty():
        raise CliError("forget needs confirmation: run it in a terminal, or pass --yes")
    answer = input(f"Delete everything twinbot keeps about {user!r}? This cannot be undone. [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.cmd == "run":
        from bot.app import serve, serves_console

        quiet = serves_console(settings) and not (args.verbose or args.debug)
        with stderr_to_file(settings.log_file) if quiet else nullcontext():
            asyncio.run(serve(settings))
        return 0
    if args.cmd == "chat":
        return asyncio.run(chat(settings, args.user))
    if args.cmd == "train":
        from persona.training.trainer import train_user_now

        return train_user_now(settings, args.user, platform="console")
    if args.cmd == "eval":
        from persona.evaluation.suite import run

        try:
            return run(args, settings)
        except (OSError, ValueError) as exc:
            raise CliError(str(exc)) from exc
    if args.cmd == "forget" and not args.yes and not confirm_forget(args.user):
        print("Nothing deleted.")
        return 1
    return asyncio.run(run_command(settings, args.user, job_for(args), getattr(args, "out", None)))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `twinbot` console script: one clear line and a non-zero status on failure."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        setup_logging("DEBUG" if args.debug else settings.log_level)
        return dispatch(args, settings)
    except (SettingsError, CliError) as exc:
        print(f"twinbot: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, SettingsError) else 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"twinbot: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
