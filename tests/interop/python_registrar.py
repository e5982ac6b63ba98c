"""A Python tractor 0.1.0a5 root serving as the registrar (arbiter) at REGISTRAR_PORT; it waits
for an actor called NAME (a Rust actor registering with it), calls it, and cancels it.

usage: python_registrar.py REGISTRAR_PORT NAME
"""
import sys
import warnings

warnings.simplefilter("ignore")

import trio  # noqa: E402
import tractor  # noqa: E402


async def main(port, name):
    async with tractor.open_root_actor(name="py-arbiter", arbiter_addr=("127.0.0.1", port)):
        print("ready", flush=True)
        with trio.fail_after(20):
            async with tractor.wait_for_actor(name) as portal:
                total = await portal.run_from_ns("demo", "add", a=20, b=22)
                print(f"add -> {total}", flush=True)
                assert total == 42
                await portal.cancel_actor()
    print("done", flush=True)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), sys.argv[2])
