//! Faults in real processes over real sockets: a child SIGKILLed while its parent calls it,
//! reads its stream or is inside a context with it; the middle of a three-level tree SIGKILLed;
//! connections cut mid-frame and mid-stream from either side.
//!
//! Every fault must surface as a clear error within a bound measured from the fault (never a
//! hang), and an actor that is still alive must go on serving new connections.
//!
//! The tree tests are roots spawning children from this binary (`#[actor::test]`, so they honour
//! `ACTOR_TRANSPORT=unix`); the connection tests serve this binary's `faults` namespace from a
//! second process (`actor_tests::FixtureActor`) on both transports and speak to it with raw
//! sockets.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use actor::Error;
use actor_ipc::{
    CallKind, Cmd, ErrorInfo, Listener, Msg, Payload, Uid,
    transport::{ReadHalf, Transport, WriteHalf},
};
use actor_tests::{
    FixtureActor, RawClient, TRANSPORTS, Transport as Tr, process_alive, serve_fixture_if_asked,
    within,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How soon after a fault the side that waits on the dead peer must see an error.
const FAULT_BOUND: Duration = Duration::from_secs(1);

/// The fixture entry of this binary (see `actor_tests::FixtureActor`).
const ENTRY: &str = "fixture_actor_entry";

/// Nurseries kept alive by actors that opened them inside a call.
static KEEP: Mutex<Vec<actor::Nursery>> = Mutex::new(Vec::new());

/// The namespace every actor of these tests serves.
mod faults {
    use super::*;

    #[actor::remote(ns = "faults")]
    pub(crate) async fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[actor::remote(ns = "faults")]
    pub(crate) async fn pid() -> u32 {
        std::process::id()
    }

    #[actor::remote(ns = "faults")]
    pub(crate) async fn sleep_forever() {
        std::future::pending::<()>().await
    }

    /// How many `faults` calls run in this actor, the caller of this one not counted.
    #[actor::remote(ns = "faults")]
    pub(crate) async fn running() -> u64 {
        actor::Actor::current()
            .map(|me| me.running_calls("faults").saturating_sub(1))
            .unwrap_or(0)
    }

    /// 0, 1, 2, ... one item every 10 ms, forever: a live stream its reader waits on.
    #[actor::remote(ns = "faults")]
    pub(crate) fn ticks() -> impl Stream<Item = u64> {
        futures::stream::unfold(0_u64, |i| async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Some((i, i + 1))
        })
    }

    /// Blobs of `size` bytes, forever, as fast as the reader takes them: frames large enough
    /// that a connection cut mid-stream is most likely cut inside one.
    #[actor::remote(ns = "faults")]
    pub(crate) fn blobs_forever(size: u64) -> impl Stream<Item = Bytes> {
        let blob = Bytes::from(vec![0x5a_u8; usize::try_from(size).unwrap_or(0)]);
        futures::stream::repeat(blob)
    }

    /// A context that starts, opens its stream and then waits forever.
    #[actor::remote(ns = "faults", started = ())]
    pub(crate) async fn blocked_ctx(ctx: actor::Context) -> actor::Result<()> {
        ctx.started(()).await?;
        let _stream = ctx.open_stream::<u64>().await?;
        std::future::pending::<()>().await;
        Ok(())
    }

    /// Starts a daemon child called `leaf` that lives as long as this actor; returns its pid.
    #[actor::remote(ns = "faults")]
    pub(crate) async fn start_leaf() -> actor::Result<u32> {
        let nursery = actor::open_nursery().await?;
        let leaf = nursery.start_actor("leaf").enable("faults").await?;
        let pid = leaf.run(pid {}).await?;
        KEEP.lock().expect("the nurseries kept").push(nursery);
        Ok(pid)
    }
}

use faults::*;

#[test]
fn fixture_actor_entry() {
    serve_fixture_if_asked();
}

/// SIGKILLs `pid`; returns the instant just before the signal was sent.
fn sigkill(pid: u32) -> Instant {
    let killed = Instant::now();
    actor_tests::signal(pid, "-KILL");
    killed
}

/// Waits for `waiting`, a task that records when it ended, and returns its outcome and how
/// long after `since` it ended; fails loudly if that is past [`FAULT_BOUND`].
async fn ended_within_bound<T>(
    what: &str,
    since: Instant,
    waiting: tokio::task::JoinHandle<(T, Instant)>,
) -> T {
    let (outcome, ended) = within(what, waiting)
        .await
        .unwrap_or_else(|e| panic!("{what}: the waiting task failed: {e}"));
    let took = ended.saturating_duration_since(since);
    eprintln!("{what}: error seen {took:?} after the fault");
    assert!(
        took < FAULT_BOUND,
        "{what}: the error came {took:?} after the fault (bound {FAULT_BOUND:?})"
    );
    outcome
}

/// Asserts `err` is the lost connection to the actor called `peer`.
fn assert_lost_connection_to(err: &Error, peer: &str) {
    match err {
        Error::Disconnected { peer: uid, detail } => {
            assert_eq!(uid.name, peer, "the error names the wrong peer: {err}");
            assert!(!detail.is_empty(), "no reason given: {err:?}");
        }
        other => panic!("expected the connection to {peer} to be lost, got {other:?}"),
    }
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(
        text.starts_with(&format!("connection to actor {peer}")) && text.contains("lost"),
        "unclear message: {text}"
    );
    assert_eq!(err.type_str(), "TransportClosed");
}

/// Closes `nursery`, which must report that its child `name` (pid `pid`) was SIGKILLed.
async fn assert_nursery_reports_the_kill(nursery: actor::Nursery, name: &str, pid: u32) {
    let err = within("the nursery to close", nursery.close())
        .await
        .expect_err("a child killed unasked is the nursery's failure");
    let exited = err
        .flatten()
        .into_iter()
        .find(|e| matches!(e, Error::ChildExited { .. }))
        .unwrap_or_else(|| panic!("no ChildExited in the nursery's report"));
    assert!(
        matches!(
            &exited,
            Error::ChildExited {
                actor,
                pid: Some(p),
                exit: actor::ChildExit::Signal { number: 9, .. },
            } if actor == name && *p == pid
        ),
        "{exited:?}"
    );
}

/// Starts a daemon child `victim` serving `faults`; returns its nursery, portal and pid.
async fn start_victim() -> (actor::Nursery, actor::Portal, u32) {
    let nursery = actor::open_nursery().await.expect("open a nursery");
    let victim = nursery
        .start_actor("victim")
        .enable("faults")
        .await
        .expect("start the victim");
    let pid = victim.run(pid {}).await.expect("the victim's pid");
    (nursery, victim, pid)
}

#[actor::test]
async fn a_call_into_a_child_killed_meanwhile_fails_within_a_second() {
    let (nursery, victim, victim_pid) = start_victim().await;
    let call = victim.call(sleep_forever {}).await.expect("start the call");
    within("the call to run in the victim", async {
        while victim.run(running {}).await.expect("ask the victim") != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let waiting = tokio::spawn(async move {
        let outcome = call.result().await;
        (outcome, Instant::now())
    });
    assert!(!waiting.is_finished(), "the call ended before the kill");
    let killed = sigkill(victim_pid);
    let outcome = ended_within_bound("the pending call", killed, waiting).await;
    let err = outcome.expect_err("a call into a killed actor cannot succeed");
    assert_lost_connection_to(&err, "victim");
    // The portal is dead: a new call fails at once instead of hanging.
    let err = within("a call on the dead portal", victim.run(add { a: 1, b: 1 }))
        .await
        .expect_err("a call into a killed actor cannot succeed");
    assert_lost_connection_to(&err, "victim");
    assert_nursery_reports_the_kill(nursery, "victim", victim_pid).await;
}

#[actor::test]
async fn a_stream_from_a_child_killed_meanwhile_fails_within_a_second() {
    let (nursery, victim, victim_pid) = start_victim().await;
    let mut stream = victim
        .open_stream_from(ticks {})
        .await
        .expect("open the stream");
    let first = within("the first tick", stream.next()).await;
    assert_eq!(first.expect("a first item").expect("a good item"), 0);
    let waiting = tokio::spawn(async move {
        let mut received = 0;
        let outcome = loop {
            match stream.next().await {
                Some(Ok(_)) => received += 1,
                other => break other,
            }
        };
        let ended = Instant::now();
        // Nothing after the error: the stream is over.
        let after = stream.next().await;
        ((outcome, after, received), ended)
    });
    assert!(!waiting.is_finished(), "the stream ended before the kill");
    let killed = sigkill(victim_pid);
    let (outcome, after, received) =
        ended_within_bound("the stream's reader", killed, waiting).await;
    eprintln!("the reader got {received} more ticks before the error");
    match outcome {
        Some(Err(err)) => assert_lost_connection_to(&err, "victim"),
        other => panic!("expected the stream to fail, got {other:?}"),
    }
    assert!(after.is_none(), "an item after the error: {after:?}");
    assert_nursery_reports_the_kill(nursery, "victim", victim_pid).await;
}

#[actor::test]
async fn a_context_with_a_child_killed_meanwhile_fails_within_a_second() {
    let (nursery, victim, victim_pid) = start_victim().await;
    let (ctx, ()) = victim
        .open_context(blocked_ctx {})
        .await
        .expect("open the context");
    let mut stream = ctx.open_stream::<u64>().await.expect("open its stream");
    let waiting = tokio::spawn(async move {
        let item = stream.next().await;
        let item_ended = Instant::now();
        let result = ctx.result::<()>().await;
        ((item, item_ended, result), Instant::now())
    });
    assert!(!waiting.is_finished(), "the context ended before the kill");
    let killed = sigkill(victim_pid);
    let (item, item_ended, result) =
        ended_within_bound("the context's reader and its result", killed, waiting).await;
    let took = item_ended.saturating_duration_since(killed);
    eprintln!("the context's stream failed {took:?} after the kill");
    match item {
        Some(Err(err)) => assert_lost_connection_to(&err, "victim"),
        other => panic!("expected the context's stream to fail, got {other:?}"),
    }
    let err = result.expect_err("a context with a killed actor cannot succeed");
    assert_lost_connection_to(&err, "victim");
    assert_nursery_reports_the_kill(nursery, "victim", victim_pid).await;
}

/// Polls `done` until it holds, failing loudly once `bound` has passed since `since`; returns
/// how long after `since` it held.
async fn holds_within<F, Fut>(what: &str, since: Instant, bound: Duration, mut done: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if done().await {
            let took = since.elapsed();
            eprintln!("{what}: {took:?}");
            return took;
        }
        assert!(
            since.elapsed() < bound,
            "{what}: still not so {:?} after the fault (bound {bound:?})",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts `middle`, which starts `leaf`; returns the nursery, the middle's portal and both
/// pids, once both are registered.
async fn start_tree() -> (actor::Nursery, actor::Portal, u32, u32) {
    let nursery = actor::open_nursery().await.expect("open a nursery");
    let middle = nursery
        .start_actor("middle")
        .enable("faults")
        .await
        .expect("start the middle");
    let middle_pid = middle.run(pid {}).await.expect("the middle's pid");
    let leaf_pid = middle.run(start_leaf {}).await.expect("start the leaf");
    assert!(process_alive(leaf_pid), "the leaf is not running");
    for name in ["middle", "leaf"] {
        let found = actor::query_actor(name).await.expect("ask the registrar");
        assert!(found.is_some(), "{name} is not registered");
    }
    (nursery, middle, middle_pid, leaf_pid)
}

#[actor::test]
async fn killing_the_middle_of_a_tree_takes_its_subtree_and_its_registrations_with_it() {
    let (nursery, middle, middle_pid, leaf_pid) = start_tree().await;
    let killed = sigkill(middle_pid);
    holds_within(
        "the leaf gone from the process table",
        killed,
        FAULT_BOUND,
        || std::future::ready(!process_alive(leaf_pid)),
    )
    .await;
    holds_within(
        "the middle gone from the process table",
        killed,
        FAULT_BOUND,
        || std::future::ready(!process_alive(middle_pid)),
    )
    .await;
    // A lookup by name finds neither (it finds each dead and drops it), and the registrar's
    // table no longer holds them.
    for name in ["middle", "leaf"] {
        holds_within(
            &format!("{name} not found by name"),
            killed,
            FAULT_BOUND,
            || async move {
                actor::find_actor(name)
                    .await
                    .expect("ask the registrar")
                    .is_none()
            },
        )
        .await;
        let entry = actor::query_actor(name).await.expect("ask the registrar");
        assert!(entry.is_none(), "{name} still registered at {entry:?}");
    }
    drop(middle);
    assert_nursery_reports_the_kill(nursery, "middle", middle_pid).await;
}

/// The registrar's table itself forgets the killed actors: no lookup prunes them here.
#[actor::test]
async fn the_registrar_forgets_a_killed_subtree_without_a_lookup() {
    let (nursery, middle, middle_pid, _leaf_pid) = start_tree().await;
    let me = actor::Actor::current()
        .expect("the test's root")
        .uid()
        .registry_key();
    let killed = sigkill(middle_pid);
    // No find_actor here: only the registrar's own table is read.
    holds_within(
        "the registry lists only the root",
        killed,
        FAULT_BOUND,
        || async {
            let listed: Vec<String> = actor::get_registry()
                .await
                .expect("ask the registrar")
                .into_keys()
                .collect();
            listed == [me.clone()]
        },
    )
    .await;
    drop(middle);
    assert_nursery_reports_the_kill(nursery, "middle", middle_pid).await;
}

/// A `cmd` frame calling `faults.func` with no arguments.
fn cmd_frame(func: &str, cid: &str) -> Bytes {
    Msg::from(Cmd {
        ns: "faults".into(),
        func: func.into(),
        kwargs: Payload::empty_map(),
        caller: Uid::new("raw").into(),
        cid: cid.into(),
        trace: None,
    })
    .to_frame()
    .expect("encode a cmd")
}

/// Waits until no `faults` call runs in the actor behind `observer`, at most `bound` from `since`.
async fn calls_end_within(observer: &actor::Portal, since: Instant, bound: Duration) {
    holds_within("the cut connection's calls ended", since, bound, || async {
        observer.run(running {}).await.expect("ask the actor") == 0
    })
    .await;
}

/// A portal to `addr` under an identity of its own. Not `FixtureActor::portal`
/// (`actor::connect`): outside an actor that connects as the process's only running actor, if
/// there is one, and the `#[actor::test]` roots of this binary run beside these tests: the
/// connection would be that root's, and would close when its test ends.
async fn client_portal(addr: &actor::Addr) -> actor::Portal {
    within("connecting", actor::connect_as("faults-client", addr))
        .await
        .expect("connect")
}

/// Proves the fixture serves new connections: a fresh portal's call is answered.
async fn assert_serves_new_connections(fixture: &FixtureActor) {
    let fresh = client_portal(&fixture.addr).await;
    let sum = within(
        "a call on a fresh connection",
        fresh.run(add { a: 40, b: 2 }),
    )
    .await
    .expect("a fresh connection is served");
    assert_eq!(sum, 42);
}

#[tokio::test]
async fn a_client_cutting_its_connection_mid_frame_ends_its_calls_and_the_actor_serves_on() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["faults"]).await;
        let observer = client_portal(&fixture.addr).await;
        for half_close in [true, false] {
            let case = format!("{transport:?}, half close: {half_close}");
            let mut raw = RawClient::connect_handshaken(&fixture.addr).await;
            raw.write(&cmd_frame("sleep_forever", "sleeper")).await;
            within("the raw client's call to run", async {
                while observer.run(running {}).await.expect("ask the actor") != 1 {
                    tokio::task::yield_now().await;
                }
            })
            .await;
            // Half of the next frame, header included, then the cut.
            let next = cmd_frame("sleep_forever", "never");
            raw.write(&next[..next.len() / 2]).await;
            let cut = Instant::now();
            if half_close {
                // The actor sees the stream end inside the frame and closes its side.
                raw.shutdown_write().await;
                raw.read_to_end().await;
            } else {
                drop(raw);
            }
            calls_end_within(&observer, cut, FAULT_BOUND).await;
            assert_serves_new_connections(&fixture).await;
            eprintln!("{case}: ok");
        }
        // The connection used for observing was never disturbed.
        assert_eq!(observer.run(add { a: 1, b: 2 }).await.expect("observe"), 3);
    }
}

/// A raw connection with the handshake done, to read and write frames by hand.
struct RawPeer {
    read: ReadHalf,
    write: WriteHalf,
    peer: Uid,
}

impl RawPeer {
    /// Sends our handshake and reads the peer's.
    async fn handshake(transport: Transport, name: &str) -> Self {
        let (read, mut write) = transport.into_split();
        let hello = Msg::Handshake(Uid::new(name))
            .to_frame()
            .expect("encode the handshake");
        write.write_all(&hello).await.expect("send the handshake");
        let mut peer = Self {
            read,
            write,
            peer: Uid::new("unknown"),
        };
        let body = within("the peer's handshake", peer.read_body()).await;
        peer.peer = Msg::decode_handshake(body).expect("a handshake");
        peer
    }

    /// Reads one frame's body.
    async fn read_body(&mut self) -> Bytes {
        let mut header = [0_u8; 4];
        self.read
            .read_exact(&mut header)
            .await
            .expect("a frame header");
        let len = u32::from_le_bytes(header) as usize;
        let mut body = vec![0_u8; len];
        self.read.read_exact(&mut body).await.expect("a frame body");
        Bytes::from(body)
    }

    /// Reads one message.
    async fn recv(&mut self) -> Msg {
        let body = within("a message", self.read_body()).await;
        Msg::decode(body).expect("a well-formed message")
    }

    /// Writes one message.
    async fn send(&mut self, msg: &Msg) {
        let frame = msg.to_frame().expect("encode");
        self.write.write_all(&frame).await.expect("send");
    }
}

#[tokio::test]
async fn a_client_closing_its_socket_mid_stream_ends_the_stream_and_the_actor_serves_on() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["faults"]).await;
        let observer = client_portal(&fixture.addr).await;
        let connected = within("a raw connection", Transport::connect(&fixture.addr))
            .await
            .expect("connect");
        let mut raw = RawPeer::handshake(connected, "raw").await;
        assert_eq!(raw.peer.name, "fixture");
        // No flow control asked: the actor streams as fast as the socket takes it.
        let cmd = Msg::from(Cmd {
            ns: "faults".into(),
            func: "blobs_forever".into(),
            kwargs: Payload::encode(&std::collections::HashMap::from([("size", 100_000_u64)]))
                .expect("encode"),
            caller: Uid::new("raw").into(),
            cid: "blobs".into(),
            trace: None,
        });
        raw.send(&cmd).await;
        let functype = raw.recv().await;
        assert_eq!(
            functype,
            Msg::FuncType {
                cid: "blobs".into(),
                kind: CallKind::AsyncGen
            }
        );
        let first = raw.recv().await;
        assert!(
            matches!(&first, Msg::Yield { cid, .. } if cid == "blobs"),
            "{first:?}"
        );
        // Part of the next item, then the socket closes with the actor still writing.
        let mut part = [0_u8; 1000];
        within("part of an item", raw.read.read_exact(&mut part))
            .await
            .expect("read part of an item");
        assert_eq!(observer.run(running {}).await.expect("observe"), 1);
        drop(raw);
        let cut = Instant::now();
        calls_end_within(&observer, cut, FAULT_BOUND).await;
        assert_serves_new_connections(&fixture).await;
        let items = client_portal(&fixture.addr)
            .await
            .open_stream_from(ticks {})
            .await
            .expect("a new stream")
            .take(3)
            .collect::<Vec<_>>();
        let items: Vec<u64> = within("a new stream's items", items)
            .await
            .into_iter()
            .map(|item| item.expect("an item"))
            .collect();
        assert_eq!(items, [0, 1, 2]);
    }
}

#[tokio::test]
async fn an_actor_killed_mid_stream_fails_its_reader_within_a_second() {
    for transport in TRANSPORTS {
        let mut fixture = FixtureActor::start(ENTRY, transport, &["faults"]).await;
        let portal = client_portal(&fixture.addr).await;
        let server_pid = fixture.child.id().expect("the fixture's pid");
        let mut stream = portal
            .open_stream_from(blobs_forever { size: 200_000 })
            .await
            .expect("open the stream");
        let first = within("the first blob", stream.next()).await;
        assert_eq!(first.expect("an item").expect("a good item").len(), 200_000);
        let reader = tokio::spawn(async move {
            let mut received = 1_u64;
            let outcome = loop {
                match stream.next().await {
                    Some(Ok(blob)) => {
                        assert_eq!(blob.len(), 200_000, "a blob cut short");
                        received += 1;
                    }
                    other => break other,
                }
            };
            let ended = Instant::now();
            let after = stream.next().await;
            ((outcome, after, received), ended)
        });
        assert!(!reader.is_finished(), "the stream ended before the kill");
        let killed = sigkill(server_pid);
        let (outcome, after, received) = ended_within_bound(
            &format!("{transport:?}: the reader of a killed actor's stream"),
            killed,
            reader,
        )
        .await;
        eprintln!("{transport:?}: {received} whole blobs before the error");
        match outcome {
            Some(Err(err)) => assert_lost_connection_to(&err, "fixture"),
            other => panic!("expected the stream to fail, got {other:?}"),
        }
        assert!(after.is_none(), "an item after the error: {after:?}");
        let err = within("a call on the dead portal", portal.run(add { a: 1, b: 1 }))
            .await
            .expect_err("a call into a killed actor cannot succeed");
        assert_lost_connection_to(&err, "fixture");
        let status = within("the fixture to be reaped", fixture.child.wait())
            .await
            .expect("wait for the fixture");
        assert!(!status.success(), "{status}");
    }
}

/// A fake actor on a real socket: answers the portal's calls until its stream, sends one item
/// of it and then half of the next frame, and closes its sending side, telling `cut` when.
/// Then it reads what the portal still sends (so its close is a FIN after the half frame, not
/// a reset for unread data) until the portal closes the connection too.
async fn serve_then_cut_mid_frame(listener: Listener, cut: tokio::sync::oneshot::Sender<Instant>) {
    let accepted = within("the portal to connect", listener.accept())
        .await
        .expect("accept");
    let mut raw = RawPeer::handshake(accepted, "fake").await;
    let cid = loop {
        let Msg::Cmd(cmd) = raw.recv().await else {
            continue;
        };
        if cmd.func == "ticks" {
            break cmd.cid;
        }
        // Protocol extensions (flow control...) refused as tractor 0.1.0a5 refuses them.
        let refused = ErrorInfo::new("ModuleNotExposed", format!("{} is not enabled", cmd.ns));
        raw.send(&Msg::Error {
            cid: Some(cmd.cid.clone()),
            error: Box::new(refused),
        })
        .await;
    };
    raw.send(&Msg::FuncType {
        cid: cid.clone(),
        kind: CallKind::AsyncGen,
    })
    .await;
    let item = |i: u64| Msg::Yield {
        cid: cid.clone(),
        value: Payload::encode(&i).expect("encode"),
    };
    raw.send(&item(0)).await;
    let next = item(1).to_frame().expect("encode");
    raw.write
        .write_all(&next[..next.len() / 2])
        .await
        .expect("send half a frame");
    raw.write.shutdown().await.expect("close the sending side");
    cut.send(Instant::now())
        .expect("the test waits for the cut");
    let mut rest = Vec::new();
    // A reset is the portal closing too.
    let _ = within(
        "the portal to close the connection",
        raw.read.read_to_end(&mut rest),
    )
    .await;
}

#[tokio::test]
async fn a_peer_closing_mid_frame_fails_the_portals_stream_within_a_second() {
    for transport in TRANSPORTS {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = match transport {
            Tr::Tcp => actor::Addr::tcp("127.0.0.1", 0),
            Tr::Unix => actor::Addr::unix(dir.path().join("fake.sock")),
        };
        let listener = Listener::bind(&addr).await.expect("bind");
        let addr = listener.local_addr().clone();
        let (cut, cut_at) = tokio::sync::oneshot::channel();
        let fake = tokio::spawn(serve_then_cut_mid_frame(listener, cut));
        let portal = client_portal(&addr).await;
        let mut stream = within("the stream to open", portal.open_stream_from(ticks {}))
            .await
            .expect("open the stream");
        let reader = tokio::spawn(async move {
            let first = stream.next().await;
            let second = stream.next().await;
            let ended = Instant::now();
            ((first, second, stream.next().await), ended)
        });
        let cut = within("the fake actor to cut", cut_at)
            .await
            .expect("the fake actor cuts");
        let (first, second, after) =
            ended_within_bound(&format!("{transport:?}: the portal's reader"), cut, reader).await;
        assert_eq!(first.expect("an item").expect("a good item"), 0);
        match second {
            Some(Err(err)) => {
                assert_lost_connection_to(&err, "fake");
                assert!(
                    err.to_string().contains("inside a frame"),
                    "the cut is not named: {err}"
                );
            }
            other => panic!("expected the stream to fail, got {other:?}"),
        }
        assert!(after.is_none(), "an item after the error: {after:?}");
        assert!(portal.is_closed(), "the portal outlived its connection");
        // Its socket closes with its connection, while the portal is still held.
        within("the fake actor to end", fake)
            .await
            .expect("the fake actor");
        drop(portal);
    }
}
