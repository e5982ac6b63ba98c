"""Python tractor 0.1.0a5 against a Rust actor that requires a secret: it cannot call it.

usage: python_refused.py DAEMON_PORT

Connects by address and tries a call and `self cancel`; prints `ok   refused: ...` and exits 0
when both fail (tractor 0.1.0a5 cannot authenticate), exits 1 if either succeeds.
"""
import sys
import warnings

warnings.simplefilter("ignore")

import trio  # noqa: E402
import tractor  # noqa: E402


async def attempt(port, what):
    from tractor._ipc import _connect_chan
    from tractor._portal import open_portal
    try:
        with trio.fail_after(10):
            async with _connect_chan("127.0.0.1", port) as chan:
                async with open_portal(chan) as portal:
                    if what == "call":
                        await portal.run_from_ns("demo", "echo", x=7)
                    else:
                        await portal.run_from_ns("self", "cancel")
    except BaseException as err:  # noqa: B902 - any failure is the refusal we expect
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        print(f"ok   refused: {what}: {type(err).__name__}", flush=True)
        return
    print(f"FAIL {what} went through without the secret", flush=True)
    raise SystemExit(1)


async def main(port):
    async with tractor.open_root_actor(name="py-intruder"):
        await attempt(port, "call")
        await attempt(port, "cancel")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
