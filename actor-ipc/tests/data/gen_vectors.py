"""Prints the golden frames of tractor 0.1.0a5's wire protocol as JSON (vectors.json beside it).

Every frame is produced by tractor's own transport, ``tractor._ipc.MsgpackTCPStream.send``, over
a real loopback TCP connection, and read back as raw bytes on the other end: what is recorded is
exactly what a tractor 0.1.0a5 peer puts on the wire.

    python gen_vectors.py > vectors.json      # with the reference peer's python:
    "$(tools/install-tractor-a5.sh)" actor-ipc/tests/data/gen_vectors.py

The interop tests run it and compare its output with the committed vectors.json.

JSON cannot tell bytes from text, so a msgpack bin value is written as {"$bin": "<hex>"}.
Map keys keep the order shown, which is the order on the wire.
"""

import json
import struct
import sys

import trio
from tractor._ipc import MsgpackTCPStream

CLIENT = ["client", "7d3c2b1a-0000-4000-8000-000000000001"]
WORKER_ADDR = ["127.0.0.1", 34087]


def cmd(ns, func, kwargs, cid):
    return {"cmd": [ns, func, kwargs, CLIENT, cid]}


def error(tb_str, type_str, cid=None):
    msg = {"error": {"tb_str": tb_str, "type_str": type_str}}
    if cid is not None:
        msg["cid"] = cid
    return msg


# (name, what it is, value)
CASES = [
    ("handshake", "each side's first frame: its uid [name, uuid]",
     ["root", "0f6a1c2e-9b1d-4c5e-8f00-1234567890ab"]),
    ("cmd-asyncfunc", "call demo.add(a=1, b=2)", cmd("demo", "add", {"a": 1, "b": 2}, "c1")),
    ("functype-asyncfunc", "first reply to an async function call",
     {"functype": "asyncfunc", "cid": "c1"}),
    ("return-int", "result of an async function", {"return": 3, "cid": "c1"}),
    ("return-none", "a function returning nothing", {"return": None, "cid": "c1"}),
    ("cmd-asyncgen", "open a one-way stream demo.count(n=3)",
     cmd("demo", "count", {"n": 3}, "c2")),
    ("functype-asyncgen", "first reply to a stream call", {"functype": "asyncgen", "cid": "c2"}),
    ("yield-int", "one stream item", {"yield": 0, "cid": "c2"}),
    ("yield-str", "one stream item, a string", {"yield": "hello", "cid": "c2"}),
    ("yield-bin", "one stream item, raw bytes (msgpack bin)",
     {"yield": b"\x00\x01\xff", "cid": "c2"}),
    ("stop", "end of a stream, from either side", {"stop": True, "cid": "c2"}),
    ("cmd-context", "open a bidirectional context demo.echo_ctx(start=5)",
     cmd("demo", "echo_ctx", {"start": 5}, "c3")),
    ("functype-context", "first reply to a context call", {"functype": "context", "cid": "c3"}),
    ("started", "the callee's Context.started(value)", {"started": 5, "cid": "c3"}),
    ("return-str", "a context's final result", {"return": "done", "cid": "c3"}),
    ("error", "a remote exception",
     error("Traceback (most recent call last):\nValueError: kaboom\n", "ValueError", "c4")),
    ("error-no-cid", "a runtime error shipped to the parent, outside any call",
     error("boom", "RuntimeError")),
    ("error-ctxc", "a cancelled context",
     error("echo_ctx was remotely cancelled by its caller", "ContextCancelled", "c3")),
    ("error-module-not-exposed", "call into a namespace the actor did not enable",
     error("ModuleNotExposed: secret is not enabled", "ModuleNotExposed", "c5")),
    ("cancel-task", "cancel the task behind cid c2 (sent with a new cid)",
     cmd("self", "_cancel_task", {"cid": "c2"}, "c6")),
    ("cancel-actor", "ask the whole actor to cancel and exit", cmd("self", "cancel", {}, "c7")),
    ("return-true", "reply to self.cancel", {"return": True, "cid": "c7"}),
    ("register-actor", "registrar: register a uid at an address",
     cmd("self", "register_actor", {"uid": CLIENT, "sockaddr": WORKER_ADDR}, "c8")),
    ("unregister-actor", "registrar: drop a uid",
     cmd("self", "unregister_actor", {"uid": CLIENT}, "c9")),
    ("find-actor", "registrar: look a name up", cmd("self", "find_actor", {"name": "worker"}, "c10")),
    ("return-addr", "registrar reply to find_actor", {"return": WORKER_ADDR, "cid": "c10"}),
    ("wait-for-actor", "registrar: block until a name registers",
     cmd("self", "wait_for_actor", {"name": "worker"}, "c11")),
    ("return-addrs", "registrar reply to wait_for_actor", {"return": [WORKER_ADDR], "cid": "c11"}),
    ("get-registry", "registrar: the whole table", cmd("self", "get_registry", {}, "c12")),
    ("return-registry", "registrar reply to get_registry",
     {"return": {"worker.7d3c2b1a-0000-4000-8000-000000000001": WORKER_ADDR}, "cid": "c12"}),
    ("spawn-init", "parent to child, right after the child's handshake", {
        "_parent_main_data": {},
        "enable_modules": {"demo": ""},
        "_arb_addr": ["127.0.0.1", 1616],
        "bind_host": "127.0.0.1",
        "bind_port": 0,
        "_runtime_vars": {
            "_debug_mode": False,
            "_is_root": False,
            "_root_mailbox": ["127.0.0.1", 1616],
        },
    }),
    ("sentinel", "None: stop the message loop of this connection", None),
    ("big-int", "u64 and negative ints",
     {"return": [18446744073709551615, -1, -129, 4294967296], "cid": "c13"}),
    ("float", "floats are float64", {"return": 1.5, "cid": "c14"}),
]


def as_json(value):
    """The value in the vectors' JSON rendering: bytes become {"$bin": hex}."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return value


async def frames_from_tractor():
    """Sends every case through tractor's transport; returns the raw frames received."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    frames = []
    async with trio.open_nursery() as nursery:
        accepted = trio.Event()
        server = {}

        async def accept_one():
            server["stream"] = await listeners[0].accept()
            accepted.set()

        nursery.start_soon(accept_one)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await accepted.wait()
        transport = MsgpackTCPStream(client)
        raw = server["stream"]
        pending = b""

        async def read_exactly(n):
            nonlocal pending
            while len(pending) < n:
                chunk = await raw.receive_some(65536)
                if not chunk:
                    raise EOFError("tractor's side closed mid-frame")
                pending += chunk
            out, pending = pending[:n], pending[n:]
            return out

        for _, _, value in CASES:
            await transport.send(value)
            header = await read_exactly(4)
            (length,) = struct.unpack("<I", header)
            frames.append(header + await read_exactly(length))
        await client.aclose()
        await raw.aclose()
        for listener in listeners:
            await listener.aclose()
    return frames


def main():
    frames = trio.run(frames_from_tractor)
    cases = [
        {"name": name, "what": what, "frame_hex": frame.hex(), "value": as_json(value)}
        for (name, what, value), frame in zip(CASES, frames)
    ]
    document = {
        "codec": "tractor 0.1.0a5's MsgpackTCPStream (msgspec.msgpack, untyped); "
                 "frame = u32 little-endian length + body",
        "generator": "gen_vectors.py beside this file",
        "cases": cases,
    }
    json.dump(document, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
