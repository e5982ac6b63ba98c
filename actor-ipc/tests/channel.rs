//! Channels over real sockets in one process: handshake on both transports, many concurrent
//! senders on one connection, coalesced writes, and the clean close with the sentinel.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use actor_ipc::{Addr, CallKind, Channel, ChannelConfig, Cid, Listener, Msg, Payload, Uid};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// `functype` for call `cid` of `kind`.
fn functype_msg(cid: &str, kind: CallKind) -> Msg {
    Msg::FuncType {
        cid: Cid::from(cid),
        kind,
    }
}

/// `return 1` for call `cid`.
fn return_msg(cid: &str) -> Msg {
    Msg::Return {
        cid: Cid::from(cid),
        value: Payload::encode(&1).unwrap(),
    }
}

/// A connected pair of channels over `addr` (a Unix path in `dir`, or TCP on loopback).
async fn pair(addr: Addr) -> (Channel, Channel) {
    pair_with(addr, ChannelConfig::default()).await
}

/// [`pair`], the client side with `config`.
async fn pair_with(addr: Addr, config: ChannelConfig) -> (Channel, Channel) {
    let listener = Listener::bind(&addr).await.unwrap();
    let addr = listener.local_addr().clone();
    let server_uid = Uid::new("server");
    let accept = {
        let uid = server_uid.clone();
        async move {
            let transport = listener.accept().await.unwrap();
            Channel::handshake(transport, &uid, &ChannelConfig::default())
                .await
                .unwrap()
        }
    };
    let client_uid = Uid::new("client");
    let connect = Channel::connect(&addr, &client_uid, &config);
    let (server, client) = within("handshake", async { tokio::join!(accept, connect) }).await;
    let client = client.unwrap();
    assert_eq!(client.peer(), &server_uid);
    assert_eq!(server.peer(), &client_uid);
    (server, client)
}

fn addrs(dir: &tempfile::TempDir) -> [Addr; 2] {
    [
        Addr::tcp("127.0.0.1", 0),
        Addr::unix(dir.path().join("chan.sock")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_senders_keep_frames_whole_and_in_order() {
    const TASKS: u64 = 32;
    const PER_TASK: u64 = 500;
    // Frames up to 9,000 bytes: small ones are copied into the writer's queue, large ones
    // queued as they are; with low-latency mode on, senders also write inline, and the
    // socket fills, so inline writes stop midway and hand the rest to the writer task.
    const MOST: u64 = 9_000;
    let dir = tempfile::tempdir().unwrap();
    let low_latency = ChannelConfig {
        spin: Some(Duration::from_micros(20)),
        ..ChannelConfig::default()
    };
    let cases = addrs(&dir).into_iter().flat_map(|addr| {
        [
            (addr.clone(), ChannelConfig::default()),
            (addr, low_latency.clone()),
        ]
    });
    for (addr, config) in cases {
        let addr = match addr {
            Addr::Unix(path) => {
                Addr::unix(path.with_extension(format!("{:?}", config.spin.is_some())))
            }
            tcp => tcp,
        };
        let (mut server, client) = pair_with(addr, config).await;
        let sender = client.sender().clone();
        let mut senders = Vec::new();
        for task in 0..TASKS {
            let sender = sender.clone();
            senders.push(tokio::spawn(async move {
                for seq in 0..PER_TASK {
                    // Payloads of varying size, so frames straddle write boundaries.
                    let filler = "x".repeat(((task * 37 + seq * 13) % MOST) as usize);
                    let value = Payload::encode(&(task, seq, filler)).unwrap();
                    let msg = Msg::Yield {
                        cid: format!("task-{task}").into(),
                        value,
                    };
                    sender.send(&msg).await.unwrap();
                }
            }));
        }
        let mut next_seq: HashMap<String, u64> = HashMap::new();
        for _ in 0..TASKS * PER_TASK {
            let msg = within("a frame", server.recv()).await.unwrap().unwrap();
            let Msg::Yield { cid, value } = msg else {
                panic!("unexpected {msg:?}");
            };
            let (task, seq, filler): (u64, u64, String) = value.decode().unwrap();
            assert_eq!(cid, format!("task-{task}"));
            assert_eq!(filler.len() as u64, (task * 37 + seq * 13) % MOST);
            let expected = next_seq.entry(cid.to_string()).or_default();
            assert_eq!(seq, *expected, "task {task} out of order");
            *expected += 1;
        }
        for s in senders {
            s.await.unwrap();
        }
        assert_eq!(next_seq.len() as u64, TASKS);
        assert!(next_seq.values().all(|n| *n == PER_TASK));
    }
}

#[tokio::test]
async fn close_sends_the_sentinel_then_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    for addr in addrs(&dir) {
        let (mut server, client) = pair(addr).await;
        let msg = Msg::Stop { cid: "c1".into() };
        client.send(&msg).await.unwrap();
        within("close", client.sender().close()).await.unwrap();
        assert_eq!(server.recv().await.unwrap(), Some(msg));
        assert_eq!(server.recv().await.unwrap(), Some(Msg::Sentinel));
        assert_eq!(server.recv().await.unwrap(), None);
        assert!(client.sender().is_closed());
        assert!(matches!(
            client.send(&Msg::Sentinel).await,
            Err(actor_ipc::SendError::Closed)
        ));
    }
}

#[tokio::test]
async fn dropping_a_send_midway_never_leaves_half_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let config = ChannelConfig {
        send_queue_frames: 1,
        ..ChannelConfig::default()
    };
    let listener = Listener::bind(&Addr::unix(dir.path().join("c.sock")))
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let (ready, accepted) = oneshot::channel();
    tokio::spawn(async move {
        let t = listener.accept().await.unwrap();
        let ch = Channel::handshake(t, &Uid::new("s"), &ChannelConfig::default())
            .await
            .unwrap();
        let _ = ready.send(ch);
    });
    let client = Channel::connect(&addr, &Uid::new("c"), &config)
        .await
        .unwrap();
    let mut server = within("accept", accepted).await.unwrap();
    let big = Payload::encode(&vec![7u64; 200_000]).unwrap();
    let last = Msg::Stop { cid: "end".into() };
    // The peer reads everything that arrives; every frame must be whole.
    let reader = {
        let (big, last) = (big.clone(), last.clone());
        tokio::spawn(async move {
            let mut whole = 0;
            loop {
                match server.recv().await.unwrap().unwrap() {
                    Msg::Yield { value, .. } => {
                        assert_eq!(value, big);
                        whole += 1;
                    }
                    other => {
                        assert_eq!(other, last);
                        return whole;
                    }
                }
            }
        })
    };
    // Many large sends, each abandoned after a moment: whatever was queued arrives whole.
    for i in 0..50 {
        let msg = Msg::Yield {
            cid: format!("{i}").into(),
            value: big.clone(),
        };
        let _ = tokio::time::timeout(Duration::from_micros(50), client.send(&msg)).await;
    }
    within("the last send", client.send(&last)).await.unwrap();
    let whole = within("the reader", reader).await.unwrap();
    assert!(whole <= 50);
}

#[tokio::test(flavor = "current_thread")]
async fn frames_written_inline_into_a_full_socket_arrive_whole_and_in_order() {
    // Low-latency mode: the sender writes inline while the writer task is idle. The peer
    // reads only when the sender yields, so the socket fills, an inline write stops midway,
    // and the writer task must send the rest before anything queued after it.
    const FRAMES: u64 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let config = ChannelConfig {
        spin: Some(Duration::from_micros(20)),
        ..ChannelConfig::default()
    };
    let (mut server, client) = pair_with(Addr::unix(dir.path().join("inline.sock")), config).await;
    let reading = tokio::spawn(async move {
        for expected in 0..FRAMES {
            let msg = within("a frame", server.recv()).await.unwrap().unwrap();
            let Msg::Yield { value, .. } = msg else {
                panic!("unexpected {msg:?}");
            };
            let (seq, filler): (u64, String) = value.decode().unwrap();
            assert_eq!(seq, expected, "out of order");
            assert_eq!(filler.len() as u64, 1_000 + seq % 2_500);
        }
    });
    let sender = client.sender().clone();
    for seq in 0..FRAMES {
        let filler = "y".repeat((1_000 + seq % 2_500) as usize);
        let msg = Msg::Yield {
            cid: "inline".into(),
            value: Payload::encode(&(seq, filler)).unwrap(),
        };
        sender.send(&msg).await.unwrap();
    }
    within("the reader", reading).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_sender_that_never_waits_still_lets_its_thread_run_other_tasks() {
    // A producer whose frames are always ready, into a queue that always has room (the peer
    // reads), must still yield now and then: on one thread, the connection's reader and
    // writer (and everything else) run only when it does.
    let dir = tempfile::tempdir().unwrap();
    let (mut server, client) = pair(Addr::unix(dir.path().join("coop.sock"))).await;
    let reading = tokio::spawn(async move {
        let mut frames = 0_u64;
        while let Ok(Some(msg)) = server.recv().await {
            if msg == Msg::Sentinel {
                break;
            }
            frames += 1;
        }
        frames
    });
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = {
        let ran = ran.clone();
        tokio::spawn(async move { ran.store(true, std::sync::atomic::Ordering::SeqCst) })
    };
    let frame = Msg::Stop { cid: "c".into() }.to_frame().unwrap();
    let sender = client.sender().clone();
    let mut sent_before_it_ran = None;
    for sent in 0..20_000_u64 {
        if sent_before_it_ran.is_none() && ran.load(std::sync::atomic::Ordering::SeqCst) {
            sent_before_it_ran = Some(sent);
        }
        sender.send_frame(frame.clone()).await.unwrap();
    }
    let sent_before_it_ran = sent_before_it_ran.expect("the other task never ran while sending");
    assert!(
        sent_before_it_ran <= 500,
        "the other task ran only after {sent_before_it_ran} frames"
    );
    within("the other task", other).await.unwrap();
    drop(sender);
    client.sender().close().await.unwrap();
    drop(client);
    assert_eq!(within("the reader", reading).await.unwrap(), 20_000);
}

#[tokio::test]
async fn connect_to_nothing_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Channel::connect(
        &Addr::unix(dir.path().join("nobody.sock")),
        &Uid::new("c"),
        &ChannelConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, actor_ipc::ConnectError::Io { .. }), "{err}");
}

#[tokio::test]
async fn unix_listener_replaces_a_stale_socket_and_refuses_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let addr = Addr::unix(dir.path().join("s.sock"));
    let live = Listener::bind(&addr).await.unwrap();
    let err = Listener::bind(&addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    drop(live);
    let path = dir.path().join("s.sock");
    assert!(
        !path.exists(),
        "dropping the listener removes its socket file"
    );
    // A socket file left behind by a dead process (std's listener does not remove it).
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let again = Listener::bind(&addr).await.unwrap();
    drop(again);
    // A regular file at the path is never removed.
    std::fs::write(&path, b"precious").unwrap();
    assert!(Listener::bind(&addr).await.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

/// A Unix socket is owner-only (0600) whatever the process's umask allows: other local users
/// cannot connect to an actor.
#[tokio::test]
async fn a_unix_socket_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("owner-only.sock");
    let listener = Listener::bind(&Addr::unix(&path)).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    drop(listener);
}

/// Accepts one connection on `listener` and handshakes it with `config`.
async fn accept_one(
    listener: Listener,
    config: ChannelConfig,
) -> Result<Channel, actor_ipc::HandshakeError> {
    let transport = listener.accept().await.unwrap();
    Channel::handshake(transport, &Uid::new("server"), &config).await
}

/// A proof is bound to the listener it was made for: a relay between a member and another
/// listener (what a program squatting an address a member dials would do) gets nowhere, while
/// the same member connecting directly is let in.
#[tokio::test]
async fn an_authentication_relayed_to_another_listener_is_refused() {
    let secret = actor_ipc::Secret::new("the tree's secret, 32 bytes long").unwrap();
    let config = ChannelConfig {
        secret: Some(secret),
        ..ChannelConfig::default()
    };
    // Directly: accepted.
    let listener = Listener::bind(&Addr::tcp("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().clone();
    let server = tokio::spawn(accept_one(listener, config.clone()));
    let client = Channel::connect(&addr, &Uid::new("member"), &config).await;
    assert!(client.is_ok(), "{client:?}");
    assert!(within("the server", server).await.unwrap().is_ok());

    // Through a relay that copies bytes both ways: refused.
    let listener = Listener::bind(&Addr::tcp("127.0.0.1", 0)).await.unwrap();
    let target = listener.local_addr().clone();
    let server = tokio::spawn(accept_one(listener, config.clone()));
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = Addr::tcp("127.0.0.1", relay.local_addr().unwrap().port());
    tokio::spawn(async move {
        let (mut inbound, _) = relay.accept().await.unwrap();
        let Addr::Tcp { host, port } = target else {
            unreachable!()
        };
        let mut outbound = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .unwrap();
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    });
    let client = Channel::connect(&relay_addr, &Uid::new("member"), &config).await;
    assert!(client.is_err(), "a relayed proof was accepted");
    let served = within("the server", server).await.unwrap();
    assert!(
        matches!(
            served,
            Err(actor_ipc::HandshakeError::Auth(
                actor_ipc::AuthError::WrongSecret
            ))
        ),
        "{served:?}"
    );
}

#[tokio::test]
async fn asyncfunc_confirmations_are_skipped_only_while_no_stream_call_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = pair(addrs(&dir)[1].clone()).await;
    let (_tx, mut reader) = client.into_split();
    let open_streams = Arc::new(AtomicUsize::new(0));
    reader.skip_confirmations_while(open_streams.clone());
    let functype = functype_msg;
    let ret = return_msg;
    // No stream open: the asyncfunc confirmation is skipped, other functypes are not.
    server
        .send(&functype("a-1", CallKind::AsyncFunc))
        .await
        .unwrap();
    server.send(&ret("a-1")).await.unwrap();
    server
        .send(&functype("a-2", CallKind::AsyncGen))
        .await
        .unwrap();
    assert_eq!(
        within("a-1's return", reader.recv()).await.unwrap(),
        Some(ret("a-1"))
    );
    assert_eq!(
        within("a-2's functype", reader.recv()).await.unwrap(),
        Some(functype("a-2", CallKind::AsyncGen))
    );
    // A stream open: every functype is delivered (a wrong one included).
    open_streams.fetch_add(1, Ordering::AcqRel);
    server
        .send(&functype("a-3", CallKind::AsyncFunc))
        .await
        .unwrap();
    assert_eq!(
        within("a-3's functype", reader.recv()).await.unwrap(),
        Some(functype("a-3", CallKind::AsyncFunc))
    );
    // Skipped again from the buffer too, once the stream is done.
    open_streams.fetch_sub(1, Ordering::AcqRel);
    server
        .send(&functype("a-4", CallKind::AsyncFunc))
        .await
        .unwrap();
    server.send(&ret("a-4")).await.unwrap();
    assert_eq!(
        within("a-4's return", reader.recv()).await.unwrap(),
        Some(ret("a-4"))
    );
}

/// Frames read together in one burst: the confirmations among them are dropped where they
/// lie in the read buffer, and only while no stream call is open.
#[tokio::test]
async fn buffered_confirmations_are_skipped_in_place_only_while_no_stream_call_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = pair(addrs(&dir)[1].clone()).await;
    let (server, _server_reader) = server.into_split();
    let (_tx, mut reader) = client.into_split();
    let open_streams = Arc::new(AtomicUsize::new(0));
    reader.skip_confirmations_while(open_streams.clone());
    let frame = |msg: Msg| msg.to_frame().unwrap();
    let functype = |cid: &str| functype_msg(cid, CallKind::AsyncFunc);
    let ret = return_msg;
    // One write, so one read: the first message comes from `recv`, the rest are buffered.
    let burst = |first: &str, second: &str| {
        vec![
            frame(ret(first)),
            frame(functype(second)),
            frame(functype(second)),
            frame(ret(second)),
        ]
    };
    server.send_frame_parts(burst("b-0", "b-1")).await.unwrap();
    assert_eq!(
        within("b-0's return", reader.recv()).await.unwrap(),
        Some(ret("b-0"))
    );
    let next = reader.try_recv_buffered().map(Result::unwrap);
    assert_eq!(next, Some(ret("b-1")), "both confirmations skipped");
    assert!(reader.try_recv_buffered().is_none());
    // A stream open: the buffered confirmations are delivered.
    open_streams.fetch_add(1, Ordering::AcqRel);
    server.send_frame_parts(burst("b-2", "b-3")).await.unwrap();
    assert_eq!(
        within("b-2's return", reader.recv()).await.unwrap(),
        Some(ret("b-2"))
    );
    for expected in [functype("b-3"), functype("b-3"), ret("b-3")] {
        let next = reader.try_recv_buffered().map(Result::unwrap);
        assert_eq!(next, Some(expected));
    }
}
