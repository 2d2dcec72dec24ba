"""/train: queue a training job for your twin and keep one message up to date with its progress."""

from __future__ import annotations

import asyncio
import logging

from bot.commands.context import CommandContext, UserError
from bot.commands.types import CommandSpec, Invocation, Outbox, Reply, SentMessage
from persona_store import JobAlreadyActive, JobState, QueueFull

log = logging.getLogger(__name__)

POLL_S = 2.0
TERMINAL = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


async def train(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    user = await ctx.require_known(inv.event)
    if not (await ctx.store.consent.current(user.id)).learn:
        raise UserError("Training needs your `learn` consent: /consent learn.")
    ctx.limit("training requests", inv.event, ctx.settings.trains_per_hour, window_s=3600)
    from persona.training.jobs import NotEnoughData, describe_progress, queue_training

    try:
        job = await queue_training(ctx.settings, ctx.store, user)
    except NotEnoughData as exc:
        raise UserError(str(exc)) from exc
    except JobAlreadyActive as exc:
        raise UserError(f"Your twin is already training (job #{exc.job_id}); /status shows how far it is.") from exc
    except QueueFull as exc:
        raise UserError(f"Too many twins are training right now ({exc.bound} queued); try again later.") from exc
    note = ""
    if ctx.services.trainer is None and ctx.settings.trainer_backend == "local":
        note = "\n(No trainer runs inside this bot; the job waits for `python -m persona.training --worker`.)"
    message = await out.send(Reply(describe_progress(job) + note, kind="progress"))
    ctx.spawn(follow_job(ctx, job.id, message, note), name=f"follow-job-{job.id}")


async def follow_job(ctx: CommandContext, job_id: int, message: SentMessage, note: str) -> None:
    """Edit the progress message as the job advances, until it is done, failed or cancelled."""
    from persona.training.jobs import describe_progress

    shown = ""
    while True:
        job = await ctx.store.jobs.get(job_id)
        if job is None:  # the user was forgotten meanwhile
            return
        text = describe_progress(job) + ("" if job.state in TERMINAL else note)
        if text != shown:
            try:
                await message.edit(Reply(text, kind="progress"))
            except Exception:  # an expired interaction or a deleted message ends the updates, not the job
                log.warning("stopped showing progress of job %s", job_id, exc_info=True)
                return
            shown = text
        if job.state in TERMINAL:
            if job.state is JobState.DONE and ctx.services.twins is not None:
                await ctx.services.twins.delete_adapter(job.user_id)
            return
        await asyncio.sleep(POLL_S)


SPEC = CommandSpec(
    name="train",
    description="Train your twin on your messages (progress is shown here)",
    handler=train,
    usage="/train",
)
