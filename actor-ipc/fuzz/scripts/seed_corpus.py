#!/usr/bin/env python3
"""Seeds the `decode` fuzz corpus from the protocol test vectors.

Writes one file per vector frame (length prefix + body, as on the wire), one file per bare
body (the target also decodes the whole input as a body), and one stream of all frames back
to back. Usage, from actor-ipc/fuzz:

    python3 scripts/seed_corpus.py [VECTORS_JSON] [OUT_DIR]

Defaults: ../tests/data/vectors.json (the project's golden frames) and
corpus/decode.
"""
import json
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent.parent
vectors = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "../tests/data/vectors.json"
out = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else here / "corpus/decode"
out.mkdir(parents=True, exist_ok=True)

frames = []
for case in json.loads(vectors.read_text())["cases"]:
    frame = bytes.fromhex(case["frame_hex"])
    frames.append(frame)
    (out / f"frame-{case['name']}").write_bytes(frame)
    (out / f"body-{case['name']}").write_bytes(frame[4:])
(out / "stream-all").write_bytes(b"".join(frames))
print(f"wrote {2 * len(frames) + 1} seeds to {out}")
