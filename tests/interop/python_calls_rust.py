"""Python tractor 0.1.0a5 calling a Rust actor (the `daemon` example) found by name.

usage: python_calls_rust.py REGISTRAR_PORT DAEMON_NAME DAEMON_PORT

Exits 0 when every check passes; prints what it checks. Run by examples/tests/interop.rs.
"""
import sys
import warnings

warnings.simplefilter("ignore")

import trio  # noqa: E402
import tractor  # noqa: E402


from demo import count, echo_ctx  # noqa: E402  (stand-ins naming the Rust functions)


def check(what, ok):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        raise SystemExit(1)


async def main(port, name, daemon_port):
    async with tractor.open_root_actor(name="py", arbiter_addr=("127.0.0.1", port)):
        # Directly by address, without the registrar.
        from tractor._ipc import _connect_chan
        from tractor._portal import open_portal
        async with _connect_chan("127.0.0.1", daemon_port) as chan:
            async with open_portal(chan) as portal:
                check("called by address", await portal.run_from_ns("demo", "echo", x=7) == 7)

        async with tractor.find_actor(name) as portal:
            check("found the Rust actor by name", portal is not None)
            check("asyncfunc result", await portal.run_from_ns("demo", "add", a=1, b=2) == 3)
            rounds = await portal.run_from_ns("demo", "hog", ms=20)
            check("a blocking function answers like an asyncfunc", isinstance(rounds, int) and rounds > 0)
            try:
                await portal.run_from_ns("demo", "fail", msg="kaboom")
                check("remote error raised", False)
            except tractor.RemoteActorError as err:
                check("remote error is a ValueError with the message and our src_uid",
                      err.type is ValueError and "kaboom" in str(err)
                      and err.msgdata.get("src_uid", [None])[0] == name)

            async with portal.open_stream_from(count, n=5) as stream:
                items = [item async for item in stream]
            check("stream read to the end", items == [0, 1, 2, 3, 4])

            async with portal.open_stream_from(count, n=10**12) as stream:
                taken = []
                async for item in stream:
                    taken.append(item)
                    if len(taken) == 3:
                        break
            check("stream abandoned midway", taken == [0, 1, 2])
            with trio.fail_after(5):
                while await portal.run_from_ns("demo", "running") != 0:
                    await trio.sleep(0.01)
            check("the abandoned stream's Rust task ended", True)

            async with portal.open_context(echo_ctx, start=5) as (ctx, first):
                check("context started value", first == 5)
                async with ctx.open_stream() as stream:
                    for i in range(3):
                        await stream.send(i)
                        check(f"context echo {i}", await stream.receive() == i)
                result = await ctx.result()
            check("context result", result == "done")

            await portal.cancel_actor()
            check("cancel_actor sent", True)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
