#!/usr/bin/env python3
"""Measures how much memory a daemon pins for peers that stop reading.

usage: tools/stalled-readers.py PATH/TO/daemon

Starts the daemon on a free TCP port, opens 3 raw connections that each ask for 4,096 blobs
of 1 MiB (a tractor 0.1.0a5-style handshake, no flow control) and read nothing, and prints
how much the daemon's resident memory grew over 5 s. Used for RELIABILITY.md's before/after
figure (build the daemon at each commit).
"""
import socket, struct, subprocess, sys, time, os
daemon = sys.argv[1]
p = subprocess.Popen([daemon, "--name", "m", "--listen", "tcp://127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
line = p.stdout.readline().decode()
port = int(line.rsplit(":", 1)[1])
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
def mp_str(s):
    b = s.encode(); return bytes([0xa0 | len(b)]) + b
def frame(body): return struct.pack("<I", len(body)) + body
uid = b"\x92" + mp_str("greedy") + mp_str("0123456789abcdef")
kw = b"\x82" + mp_str("n") + b"\xcd\x10\x00" + mp_str("size") + b"\xce\x00\x10\x00\x00"
cmd = b"\x81" + mp_str("cmd") + b"\x95" + mp_str("demo") + mp_str("blob") + kw + uid + mp_str("1")
before = rss(); socks = []
for _ in range(3):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(frame(uid) + frame(cmd)); socks.append(s)
peak = before; t0 = time.time()
while time.time() - t0 < 5:
    peak = max(peak, rss()); time.sleep(0.05)
print(f"{daemon}: RSS grew by {(peak - before)//1024} MiB in 5 s with 3 stalled blob streams")
p.kill()
