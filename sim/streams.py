"""Amaranth-simulator helpers for ``amaranth.lib.stream`` interfaces, as in Glasgow's ``gateware/stream.py``.

A testbench offers or takes one payload with :func:`stream_put` / :func:`stream_get`, optionally
after idle cycles drawn from a *pause* iterator (``True`` = stay idle this cycle), so that every
bench can add random bubbles and back-pressure the same way.
"""

import random

__all__ = ["random_pauses", "never", "stream_put", "stream_get"]


def random_pauses(seed, probability):
    """An endless iterator of idle decisions, each ``True`` with ``probability``."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


def never():
    """No idle cycles."""
    while True:
        yield False


async def stream_put(ctx, stream, payload, pauses=None):
    """Offer ``payload`` on ``stream`` (after any idle cycles ``pauses`` asks for) until it is taken."""
    if pauses is not None:
        while next(pauses):
            await ctx.tick()
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, pauses=None):
    """Take one payload from ``stream``, holding ``ready`` low on the cycles ``pauses`` asks for."""
    if pauses is not None:
        while next(pauses):
            await ctx.tick()
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload
