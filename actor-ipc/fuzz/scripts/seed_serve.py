#!/usr/bin/env python3
"""Writes the seeds of the `serve` fuzz target (see fuzz_targets/serve.rs for the input format).

The seeds are built from the protocol test vectors (whose calls go to namespace `demo`, the
namespace the target serves) and from the target's message templates. Usage, from
actor-ipc/fuzz:

    python3 scripts/seed_serve.py [VECTORS_JSON] [OUT_DIR]

Defaults: ../tests/data/vectors.json and seeds-serve (the committed seeds; copy them into
corpus/serve before a run).
"""
import json
import pathlib
import struct
import sys

here = pathlib.Path(__file__).resolve().parent.parent
vectors = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "../tests/data/vectors.json"
out = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else here / "seeds-serve"
out.mkdir(parents=True, exist_ok=True)

V = {case["name"]: bytes.fromhex(case["frame_hex"]) for case in json.loads(vectors.read_text())["cases"]}

# Byte 0: flags.
HANDSHAKE = 0b1  # write a valid handshake first
TOKENS = 0b10  # the rest is tokens, not raw bytes
DROP = 0b100  # drop the socket instead of half-closing and reading


def chunk(index):
    """Bits 3-5: write in pieces of [all, 1, 2, 3, 5, 8, 13, 64][index] bytes."""
    return index << 3


# Template indices (serve.rs `template`), each followed by its parameter byte.
T = {
    name: 0xE2 + i
    for i, name in enumerate(
        [
            "add", "count", "echo_ctx", "sleep_forever", "wait_ctx", "cancel_task", "yield",
            "stop", "flow_control", "credit", "sentinel", "handshake", "add_bad_args",
            "unknown_func", "unknown_ns", "return", "error", "introspect",
        ]
    )
}


def t(name, param=0):
    return bytes([T[name], param])


def body(raw):
    """A token: a frame around `raw` (short bodies) or, for longer ones, with a u16 length."""
    if len(raw) < 0xE0:
        return bytes([len(raw)]) + raw
    return b"\xe0" + struct.pack("<H", len(raw)) + raw


def unframed(raw):
    return b"\xe1" + bytes([len(raw)]) + raw


seeds = {
    # Raw mode: the vectors' frames as they are on the wire.
    "raw-call-add": bytes([HANDSHAKE]) + V["cmd-asyncfunc"],
    "raw-stream-count": bytes([HANDSHAKE]) + V["cmd-asyncgen"],
    "raw-context": bytes([HANDSHAKE]) + V["cmd-context"] + V["stop"],
    "raw-cancel-task": bytes([HANDSHAKE]) + V["cmd-asyncgen"] + V["cancel-task"],
    "raw-sentinel": bytes([HANDSHAKE]) + V["cmd-asyncfunc"] + V["sentinel"],
    "raw-cancel-actor": bytes([HANDSHAKE]) + V["cancel-actor"],
    "raw-own-handshake": bytes([0]) + V["handshake"] + V["cmd-asyncfunc"],
    "raw-no-handshake-call": bytes([0]) + V["cmd-asyncfunc"],
    "raw-chunked-1": bytes([HANDSHAKE | chunk(1)]) + V["cmd-asyncfunc"] + V["cmd-asyncgen"],
    "raw-chunked-5-drop": bytes([HANDSHAKE | DROP | chunk(4)]) + V["cmd-context"],
    "raw-all-but-cancel-actor": bytes([HANDSHAKE])
    + b"".join(frame for name, frame in V.items() if name not in ("cancel-actor", "sentinel")),
    "raw-registrar-calls": bytes([HANDSHAKE])
    + V["register-actor"] + V["find-actor"] + V["wait-for-actor"] + V["get-registry"],
    "raw-spawn-init": bytes([HANDSHAKE]) + V["spawn-init"],
    "raw-too-large-header": bytes([HANDSHAKE]) + struct.pack("<I", 64 * 1024 * 1024) + b"\xc0" * 8,
    "raw-truncated-body": bytes([HANDSHAKE]) + struct.pack("<I", 40) + b"\x81\xa3cmd\x95",
    "raw-truncated-header": bytes([HANDSHAKE]) + b"\x07\x00",
    # Token mode: templates and framed bodies.
    "tok-context-echo": bytes([TOKENS | HANDSHAKE])
    + t("echo_ctx", 3) + t("yield", 3) + t("yield", 11) + t("stop", 3),
    "tok-flow-stream": bytes([TOKENS | HANDSHAKE])
    + t("flow_control", 2) + t("count", 33) + t("credit", 1) + t("credit", 1),
    "tok-sleep-then-eof": bytes([TOKENS | HANDSHAKE]) + t("sleep_forever", 1) + t("wait_ctx", 2),
    "tok-sleep-then-drop": bytes([TOKENS | HANDSHAKE | DROP])
    + t("sleep_forever", 1) + t("wait_ctx", 2) + t("echo_ctx", 3),
    "tok-cancel-each": bytes([TOKENS | HANDSHAKE])
    + t("sleep_forever", 1) + t("wait_ctx", 2) + t("cancel_task", 1) + t("cancel_task", 2),
    "tok-errors": bytes([TOKENS | HANDSHAKE])
    + t("add_bad_args", 1) + t("unknown_func", 2) + t("unknown_ns", 3) + t("return", 4)
    + t("error", 5) + t("introspect", 6) + t("introspect", 14),
    "tok-second-handshake": bytes([TOKENS | HANDSHAKE]) + t("handshake") + t("add", 1),
    "tok-sentinel-mid": bytes([TOKENS | HANDSHAKE])
    + t("wait_ctx", 1) + t("sentinel") + t("add", 2),
    "tok-handshake-token": bytes([TOKENS]) + t("handshake") + t("add", 7),
    "tok-bodies": bytes([TOKENS | HANDSHAKE])
    + body(V["cmd-asyncfunc"][4:])
    # {"cmd": ["demo", "add", {}, ["c", "u"]]}: four fields
    + body(b"\x81\xa3cmd\x94\xa4demo\xa3add\x80\x92\xa1c\xa1u")
    # {"cmd": ["demo", "add", {}, ["c", "u"], 7]}: a non-string cid
    + body(b"\x81\xa3cmd\x95\xa4demo\xa3add\x80\x92\xa1c\xa1u\x07")
    + body(b"\xc0"),
    "tok-unframed": bytes([TOKENS | HANDSHAKE | chunk(2)])
    + t("add", 1) + unframed(b"\x05\x00\x00") + unframed(b"\x00\x81\xa3cmd\x90"),
}

for name, data in seeds.items():
    (out / name).write_bytes(data)
print(f"wrote {len(seeds)} seeds to {out}")
