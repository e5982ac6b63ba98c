"""A Python tractor 0.1.0a5 actor serving `pyfuncs`, registered with a (Rust) registrar.

usage: python_serves.py REGISTRAR_PORT NAME

Prints `ready` once registered; serves until cancelled. Run by examples/tests/interop.rs.
"""
import sys
import warnings

warnings.simplefilter("ignore")

import trio  # noqa: E402
import tractor  # noqa: E402


async def main(port, name):
    async with tractor.open_root_actor(
        name=name, arbiter_addr=("127.0.0.1", port), enable_modules=["pyfuncs"]
    ):
        print("ready", flush=True)
        # A root's user code is not cancelled by `cancel_actor`: leave once the actor is.
        await tractor.current_actor()._cancel_complete.wait()


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), sys.argv[2])
