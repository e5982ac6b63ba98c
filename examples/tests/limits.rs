//! The daemon's limits, checked from outside as a careless or hostile client would push them:
//! memory for queued outgoing data is bounded in bytes, a peer that reads nothing is cut off
//! after the write stall timeout, and connections past the limit are refused while the ones
//! within it are served.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use actor::{
    Addr, Uid,
    ipc::{
        Cmd, Msg, Payload, Value,
        transport::{ReadHalf, Transport},
    },
};
use common::{start_listening, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");

/// The resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A raw connection that handshakes like tractor 0.1.0a5 (no flow control) and asks for a
/// stream of `n` blobs of `size` bytes, then reads nothing.
async fn greedy_stream(addr: &Addr, n: u64, size: u64) -> ReadHalf {
    let (read, mut raw) = Transport::connect(addr).await.unwrap().into_split();
    let me = Uid::new("greedy");
    let kwargs = Value::Map(vec![("n".into(), n.into()), ("size".into(), size.into())]);
    let cmd = Msg::Cmd(Box::new(Cmd {
        ns: "demo".into(),
        func: "blob".into(),
        kwargs: Payload::from_value(&kwargs),
        caller: me.clone().into(),
        cid: "1".into(),
        trace: None,
    }));
    let mut bytes = Msg::Handshake(me).to_frame().unwrap().to_vec();
    bytes.extend_from_slice(&cmd.to_frame().unwrap());
    raw.write_all(&bytes).await.unwrap();
    // The write half stays open: dropping it would tell the daemon we are gone.
    std::mem::forget(raw);
    read
}

#[tokio::test]
async fn peers_that_read_nothing_pin_bounded_memory_and_are_cut_off() {
    let args = [
        "--name",
        "limited",
        "--listen",
        "tcp://127.0.0.1:0",
        "--write-stall-timeout-ms",
        "3000",
    ]
    .map(String::from);
    let (daemon, addrs) = start_listening(DAEMON, &args, 1).await;
    let pid = daemon.id().unwrap();
    let before = rss_kib(pid);
    // Three connections each asking for 4 GiB of 1 MiB blobs, reading nothing: without byte
    // budgets the daemon queued 1,024 frames (1 GiB) per connection within seconds.
    let mut greedy = Vec::new();
    for _ in 0..3 {
        greedy.push(greedy_stream(&addrs[0], 4096, 1 << 20).await);
    }
    // Watch the daemon's memory while the connections stall, until it cuts them off.
    let started = Instant::now();
    let mut peak = before;
    let mut cut_off = Vec::new();
    for mut raw in greedy {
        let mut sink = vec![0_u8; 1 << 20];
        // Read nothing until the daemon gives up on us, watching its memory.
        let eof = within("the daemon to give the stalled connection up", async {
            loop {
                peak = peak.max(rss_kib(pid));
                // A read that returns 0 (or fails) once the daemon closed; reading drains the
                // kernel buffers only after the stall timeout passed.
                if started.elapsed() > Duration::from_millis(3500) {
                    loop {
                        match raw.read(&mut sink).await {
                            Ok(0) | Err(_) => return started.elapsed(),
                            Ok(_) => {}
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        cut_off.push(eof);
    }
    let grown_mib = peak.saturating_sub(before) / 1024;
    println!(
        "daemon RSS grew by {grown_mib} MiB with 3 stalled streams; cut off after {cut_off:?}"
    );
    assert!(
        grown_mib < 200,
        "3 stalled connections grew the daemon by {grown_mib} MiB (budget 32 MiB each)"
    );
    // Still serving others.
    let portal = within("connect", actor::connect(&addrs[0])).await.unwrap();
    let sum: i64 = portal
        .run_from_ns(
            "demo",
            "add",
            Value::Map(vec![("a".into(), 1.into()), ("b".into(), 2.into())]),
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert_eq!(sum, 3);
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_and_those_within_served() {
    let args = [
        "--name",
        "few",
        "--listen",
        "tcp://127.0.0.1:0",
        "--max-connections",
        "4",
    ]
    .map(String::from);
    let (_daemon, addrs) = start_listening(DAEMON, &args, 1).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(within("connect", actor::connect(&addrs[0])).await.unwrap());
    }
    // The fifth is closed before its handshake.
    let refused = within("the fifth connection", actor::connect(&addrs[0])).await;
    assert!(refused.is_err(), "a fifth connection was served");
    // Those within the limit still work; one closing makes room.
    for portal in &held {
        let echoed = portal
            .run_from_ns("demo", "echo", Value::Map(vec![("x".into(), 7.into())]))
            .await
            .unwrap();
        assert_eq!(echoed.as_i64(), Some(7));
    }
    let closing = held.pop().unwrap();
    closing.close().await;
    within("room for a new connection", async {
        loop {
            if let Ok(portal) = actor::connect(&addrs[0]).await {
                return portal;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_busy_ones_kept() {
    let args = [
        "--name",
        "tidy",
        "--listen",
        "tcp://127.0.0.1:0",
        "--idle-timeout-ms",
        "300",
    ]
    .map(String::from);
    let (_daemon, addrs) = start_listening(DAEMON, &args, 1).await;
    // A busy connection: a call that never ends.
    let busy = within("connect", actor::connect(&addrs[0])).await.unwrap();
    let running = tokio::spawn({
        let busy = busy.clone();
        async move {
            busy.run_from_ns("demo", "sleep_forever", Value::Map(Vec::new()))
                .await
        }
    });
    // An idle one: handshaken, then nothing.
    let (mut read, write) = Transport::connect(&addrs[0]).await.unwrap().into_split();
    let mut write = write;
    write
        .write_all(&Msg::Handshake(Uid::new("idler")).to_frame().unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    within(
        "the idle connection to be closed",
        read.read_to_end(&mut got),
    )
    .await
    .unwrap();
    let idle_for = started.elapsed();
    assert!(
        idle_for >= Duration::from_millis(300),
        "closed after {idle_for:?}"
    );
    // The busy one outlived it and still serves.
    let echoed = busy
        .run_from_ns("demo", "echo", Value::Map(vec![("x".into(), 5.into())]))
        .await
        .unwrap();
    assert_eq!(echoed.as_i64(), Some(5));
    assert!(!running.is_finished(), "the running call was ended");
    running.abort();
}

#[tokio::test]
async fn heartbeats_do_not_keep_an_idle_connection_open() {
    let args = [
        "--name",
        "tidy-beats",
        "--listen",
        "tcp://127.0.0.1:0",
        "--idle-timeout-ms",
        "300",
    ]
    .map(String::from);
    let (_daemon, addrs) = start_listening(DAEMON, &args, 1).await;
    // A peer that agrees on heartbeats and sends them, and nothing else.
    let (mut read, mut write) = Transport::connect(&addrs[0]).await.unwrap().into_split();
    let me = Uid::new("beating");
    let ask = Msg::Cmd(Box::new(Cmd {
        ns: "actor.runtime".into(),
        func: "heartbeat".into(),
        kwargs: Payload::from_value(&Value::Map(vec![("interval_ms".into(), 50.into())])),
        caller: me.clone().into(),
        cid: "hb".into(),
        trace: None,
    }));
    let mut hello = Msg::Handshake(me).to_frame().unwrap().to_vec();
    hello.extend_from_slice(&ask.to_frame().unwrap());
    write.write_all(&hello).await.unwrap();
    let beating = tokio::spawn(async move {
        for n in 0.. {
            let beat = Msg::Heartbeat(n).to_frame().unwrap();
            if write.write_all(&beat).await.is_err() {
                return;
            }
            // The peer's pace (a producer's, not a wait for an event).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let started = Instant::now();
    let mut got = Vec::new();
    within(
        "the idle connection to be closed despite its heartbeats",
        read.read_to_end(&mut got),
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    beating.abort();
}
