"""Python functions a Rust actor calls in tests (served by python_serves.py)."""
import trio
import tractor

cancelled = 0


async def add(a, b):
    return a + b


async def fail(msg):
    raise ValueError(msg)


async def count(n):
    for i in range(n):
        yield i


async def sleep_forever():
    global cancelled
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        cancelled += 1
        raise


async def cancelled_count():
    return cancelled


@tractor.context
async def echo_ctx(ctx, start):
    await ctx.started(start)
    async with ctx.open_stream() as stream:
        async for item in stream:
            await stream.send(item)
    return "done"


async def getpid():
    import os
    return os.getpid()


async def flaky(marker):
    """Fails with ConnectionResetError the first time it runs for `marker` (a file it creates)."""
    import os
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return os.getpid()
    os.close(fd)
    raise ConnectionResetError("first attempt fails")
