//! Remote calls of every kind between two real processes, over TCP and over a Unix socket.
//!
//! The test binary serves its own `fixture` namespace in a second process (see
//! `actor_tests::FixtureActor`); each test connects a portal to it and checks what arrives.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actor::{Context, Error, Portal};
use actor_ipc::{CallKind, Channel, ChannelConfig, Cmd, Msg, Payload, Uid};
use actor_tests::{FixtureActor, TRANSPORTS, Transport, serve_fixture_if_asked, within};
use futures::{Stream, StreamExt, TryStreamExt};

const ENTRY: &str = "fixture_actor_entry";

/// The fixture namespace served by the second process.
mod fixture {
    use super::*;

    #[actor::remote(ns = "fixture")]
    pub(crate) async fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) async fn divide(a: i64, b: i64) -> actor::Result<i64> {
        if b == 0 {
            return Err(actor::Error::raise("ZeroDivisionError", format!("{a} / 0")));
        }
        Ok(a / b)
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) async fn parse(text: String) -> Result<i64, std::num::ParseIntError> {
        text.parse()
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) async fn panic_now(msg: String) -> u64 {
        panic!("{msg}")
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) fn panic_after(n: u64) -> impl Stream<Item = u64> {
        futures::stream::iter(0..).map(move |i| {
            assert!(i < n, "stream gave up after {n}");
            i
        })
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) fn count(n: u64) -> impl Stream<Item = u64> {
        futures::stream::iter(0..n)
    }

    /// One byte blob per size given, blob `i` filled with `i % 251`.
    #[actor::remote(ns = "fixture")]
    pub(crate) fn blobs(sizes: Vec<u64>) -> impl Stream<Item = bytes::Bytes> {
        futures::stream::iter(sizes.into_iter().enumerate().map(|(i, size)| {
            bytes::Bytes::from(vec![(i % 251) as u8; usize::try_from(size).unwrap_or(0)])
        }))
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) fn forever() -> impl Stream<Item = u64> {
        futures::stream::iter(0..)
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) async fn sleep_forever() {
        std::future::pending::<()>().await
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) async fn running() -> u64 {
        actor::Actor::current()
            .map(|me| me.running_calls("fixture").saturating_sub(1))
            .unwrap_or(0)
    }

    /// A byte blob of `size` bytes (over the frame limit when asked).
    #[actor::remote(ns = "fixture")]
    pub(crate) async fn big(size: u64) -> bytes::Bytes {
        bytes::Bytes::from(vec![7_u8; usize::try_from(size).unwrap_or(0)])
    }

    /// Waits `ms`, then returns it: a request/response function that does not finish at once.
    #[actor::remote(ns = "fixture")]
    pub(crate) async fn wait_then(ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    /// How many cancelled calls of `notices_cancel` finished their cleanup.
    pub(crate) static CLEANED_UP: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0);

    /// Waits for its cancellation, then cleans up (taking a while, as real cleanup does).
    #[actor::remote(ns = "fixture", started = ())]
    pub(crate) async fn notices_cancel(ctx: Context) -> actor::Result<()> {
        ctx.started(()).await?;
        assert!(!ctx.is_cancelled());
        ctx.cancelled().await;
        assert!(ctx.is_cancelled());
        tokio::time::sleep(Duration::from_millis(20)).await;
        CLEANED_UP.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    #[actor::remote(ns = "fixture")]
    pub(crate) async fn cleaned_up() -> u64 {
        CLEANED_UP.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// started(10 + 1), then answers each ping with a pong, returning how many it saw.
    #[actor::remote(ns = "fixture", started = i64)]
    pub(crate) async fn ping_pong(ctx: Context, base: i64) -> actor::Result<u64> {
        ctx.started(base + 1).await?;
        let mut stream = ctx.open_stream::<String>().await?;
        let mut seen = 0;
        while let Some(ping) = stream.next().await {
            let ping = ping?;
            seen += 1;
            stream.send(format!("pong:{ping}")).await?;
        }
        Ok(seen)
    }

    #[actor::remote(ns = "fixture", started = i64)]
    pub(crate) async fn started_twice(ctx: Context) -> actor::Result<()> {
        ctx.started(1).await?;
        ctx.started(2).await
    }

    #[actor::remote(ns = "fixture", started = ())]
    pub(crate) async fn stream_before_started(ctx: Context) -> actor::Result<()> {
        let _stream = ctx.open_stream::<u64>().await?;
        Ok(())
    }

    #[actor::remote(ns = "fixture", started = ())]
    pub(crate) async fn open_and_return(ctx: Context) -> actor::Result<String> {
        ctx.started(()).await?;
        let _stream = ctx.open_stream::<u64>().await?;
        Ok("returned".into())
    }

    #[actor::remote(ns = "fixture", started = ())]
    pub(crate) async fn blocked_ctx(ctx: Context) -> actor::Result<()> {
        ctx.started(()).await?;
        let _stream = ctx.open_stream::<u64>().await?;
        std::future::pending::<()>().await;
        Ok(())
    }

    #[actor::remote(ns = "fixture", started = ())]
    pub(crate) async fn ctx_panics(ctx: Context) -> actor::Result<()> {
        ctx.started(()).await?;
        panic!("context gave up")
    }

    /// Two tasks share one bidirectional stream: one sends a heartbeat every 10 ms, the other
    /// answers each ping with a pong. Returns how many pings it answered.
    #[actor::remote(ns = "fixture", started = ())]
    pub(crate) async fn heartbeat(ctx: Context) -> actor::Result<u64> {
        use futures::{SinkExt, lock::Mutex};
        ctx.started(()).await?;
        let stream = ctx.open_stream::<String>().await?;
        let (sink, mut pings) = stream.split();
        let sink = Mutex::new(sink);
        let beats = async {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                if sink.lock().await.send("beat".to_owned()).await.is_err() {
                    return;
                }
            }
        };
        let answers = async {
            let mut answered = 0;
            while let Some(ping) = pings.next().await {
                let pong = ping?.replace("ping", "pong");
                sink.lock().await.send(pong).await?;
                answered += 1;
            }
            actor::Result::Ok(answered)
        };
        tokio::select! {
            () = beats => Err(actor::Error::Usage("heartbeat stopped".into())),
            answered = answers => answered,
        }
    }

    /// Sends `n` items on its stream without reading, then returns `n`.
    #[actor::remote(ns = "fixture", started = ())]
    pub(crate) async fn flood_ctx(ctx: Context, n: u64) -> actor::Result<u64> {
        ctx.started(()).await?;
        let mut stream = ctx.open_stream::<u64>().await?;
        for i in 0..n {
            stream.send(i).await?;
        }
        Ok(n)
    }

    /// Registered but never enabled: calls must be refused.
    #[actor::remote(ns = "secret")]
    pub(crate) async fn secret() -> u64 {
        42
    }
}

use fixture::*;

#[test]
fn fixture_actor_entry() {
    serve_fixture_if_asked();
}

async fn start(transport: Transport) -> (FixtureActor, Portal) {
    let fixture = FixtureActor::start(ENTRY, transport, &["fixture"]).await;
    let portal = fixture.portal().await;
    (fixture, portal)
}

/// Waits until no `fixture` call runs in the fixture actor (other than the probe).
async fn until_idle(portal: &Portal) {
    within("the remote tasks to end", async {
        loop {
            if portal.run(running {}).await.unwrap() == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

fn remote(err: Error) -> actor::RemoteActorError {
    match err {
        Error::Remote(e) => e,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_call_kind_returns_its_results() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        assert_eq!(portal.run(add { a: 1, b: 2 }).await.unwrap(), 3);
        assert_eq!(portal.run(divide { a: 7, b: 2 }).await.unwrap(), 3);
        let items: Vec<u64> = portal
            .open_stream_from(count { n: 5 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(items, [0, 1, 2, 3, 4]);
        let (ctx, first): (_, i64) = portal.open_context(ping_pong { base: 10 }).await.unwrap();
        assert_eq!(first, 11);
        {
            let mut stream = ctx.open_stream::<String>().await.unwrap();
            for i in 0..10 {
                stream.send(format!("{i}")).await.unwrap();
                let pong = within("a pong", stream.next()).await.unwrap().unwrap();
                assert_eq!(pong, format!("pong:{i}"));
            }
        }
        assert_eq!(ctx.result::<u64>().await.unwrap(), 10);
        let dynamic = portal
            .run_from_ns(
                "fixture",
                "add",
                actor::Value::Map(vec![("a".into(), 5.into()), ("b".into(), 6.into())]),
            )
            .await
            .unwrap();
        assert_eq!(dynamic.as_i64(), Some(11));
    }
}

/// Items large enough to be written from where they are (not copied into a frame buffer),
/// mixed with small ones gathered into shared buffers, arrive whole and in order; and a stream
/// longer than the most credit ever outstanding keeps flowing on the consumer's grants.
#[tokio::test]
async fn large_and_small_items_arrive_whole_in_order_and_long_streams_keep_flowing() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let sizes: Vec<u64> = (0..96)
            .map(|i| match i % 3 {
                0 => 200 * 1024,
                1 => 10,
                _ => 16 * 1024,
            })
            .collect();
        let mut stream = portal
            .open_stream_from(blobs {
                sizes: sizes.clone(),
            })
            .await
            .unwrap();
        let mut received = 0;
        while let Some(blob) = within("a blob", stream.next()).await {
            let blob = blob.unwrap();
            let i = received;
            assert_eq!(blob.len() as u64, sizes[i], "blob {i}'s size");
            assert!(
                blob.iter().all(|b| usize::from(*b) == i % 251),
                "blob {i}'s bytes"
            );
            received += 1;
        }
        assert_eq!(received, sizes.len());

        let n = 3 * actor::MAX_STREAM_CREDIT as u64;
        let mut stream = portal.open_stream_from(count { n }).await.unwrap();
        let mut expected = 0;
        while let Some(item) = within("an item", stream.next()).await {
            assert_eq!(item.unwrap(), expected);
            expected += 1;
        }
        assert_eq!(expected, n);
    }
}

#[tokio::test]
async fn remote_errors_keep_type_trace_and_source() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let err = remote(portal.run(divide { a: 1, b: 0 }).await.unwrap_err());
        assert_eq!(err.type_str, "ZeroDivisionError");
        assert!(err.tb_str.contains("1 / 0"), "{}", err.tb_str);
        assert_eq!(err.src_uid.as_ref().unwrap().name, "fixture");
        let err = remote(portal.run(parse { text: "x1".into() }).await.unwrap_err());
        assert_eq!(err.type_str, "ParseIntError");
        assert!(err.tb_str.contains("invalid digit"), "{}", err.tb_str);
    }
}

#[tokio::test]
async fn panics_become_error_replies_and_the_actor_lives_on() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let err = remote(
            portal
                .run(panic_now { msg: "boom".into() })
                .await
                .unwrap_err(),
        );
        assert!(err.is_panic(), "{err}");
        assert!(err.tb_str.contains("boom"), "{}", err.tb_str);

        let mut stream = portal.open_stream_from(panic_after { n: 3 }).await.unwrap();
        for i in 0..3 {
            assert_eq!(stream.next().await.unwrap().unwrap(), i);
        }
        let err = remote(stream.next().await.unwrap().unwrap_err());
        assert!(
            err.is_panic() && err.tb_str.contains("gave up after 3"),
            "{err}"
        );
        assert!(stream.next().await.is_none());

        let (ctx, ()) = portal.open_context(ctx_panics {}).await.unwrap();
        let err = remote(ctx.result::<()>().await.unwrap_err());
        assert!(
            err.is_panic() && err.tb_str.contains("context gave up"),
            "{err}"
        );

        assert_eq!(portal.run(add { a: 2, b: 2 }).await.unwrap(), 4);
    }
}

/// Sends one raw `cmd` and returns every reply until an `error` or `return`.
async fn raw_call(channel: &mut Channel, ns: &str, func: &str, kwargs: Payload) -> Vec<Msg> {
    let cmd = Msg::from(Cmd {
        ns: ns.into(),
        func: func.into(),
        kwargs,
        caller: Uid::new("raw").into(),
        cid: "raw-1".into(),
        trace: None,
    });
    channel.send(&cmd).await.unwrap();
    let mut replies = Vec::new();
    loop {
        let msg = within("a reply", channel.recv()).await.unwrap().unwrap();
        let last = matches!(msg, Msg::Error { .. } | Msg::Return { .. });
        replies.push(msg);
        if last {
            return replies;
        }
    }
}

#[tokio::test]
async fn refused_calls_fail_at_once_without_functype() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["fixture"]).await;
        let mut channel =
            Channel::connect(&fixture.addr, &Uid::new("raw"), &ChannelConfig::default())
                .await
                .unwrap();
        let cases = [
            ("secret", "secret", Payload::empty_map(), "ModuleNotExposed"),
            ("fixture", "nope", Payload::empty_map(), "FunctionNotFound"),
            (
                "self",
                "get_everything",
                Payload::empty_map(),
                "FunctionNotFound",
            ),
        ];
        for (ns, func, kwargs, type_str) in cases {
            let replies = raw_call(&mut channel, ns, func, kwargs).await;
            assert_eq!(replies.len(), 1, "{ns}.{func}: {replies:?}");
            let Msg::Error { cid, error } = &replies[0] else {
                panic!("{replies:?}")
            };
            assert_eq!(cid.as_deref(), Some("raw-1"));
            assert_eq!(error.type_str, type_str, "{ns}.{func}");
        }
        // The typed API sees the same.
        let portal = fixture.portal().await;
        let err = remote(portal.run(secret {}).await.unwrap_err());
        assert!(err.is_module_not_exposed(), "{err}");
    }
}

#[tokio::test]
async fn wrong_argument_names_and_types_are_clear_errors() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let map = |pairs: Vec<(&str, actor::Value)>| {
            actor::Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
        };
        let err = portal
            .run_from_ns(
                "fixture",
                "add",
                map(vec![("a", 1.into()), ("c", 2.into())]),
            )
            .await
            .unwrap_err();
        let err = remote(err);
        assert_eq!(err.type_str, "TypeError");
        assert!(
            err.tb_str.contains('c') && err.tb_str.contains("add"),
            "{}",
            err.tb_str
        );
        let err = portal
            .run_from_ns(
                "fixture",
                "add",
                map(vec![("a", 1.into()), ("b", "two".into())]),
            )
            .await
            .unwrap_err();
        let err = remote(err);
        assert_eq!(err.type_str, "TypeError");
        assert!(err.tb_str.contains("add"), "{}", err.tb_str);
        assert_eq!(portal.run(add { a: 1, b: 1 }).await.unwrap(), 2);
    }
}

#[tokio::test]
async fn dropping_a_call_stream_or_context_cancels_the_remote_task() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        // A pending call under a timeout.
        let timed_out =
            tokio::time::timeout(Duration::from_millis(50), portal.run(sleep_forever {})).await;
        assert!(timed_out.is_err());
        until_idle(&portal).await;
        // A stream dropped midway.
        let mut stream = portal.open_stream_from(forever {}).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), 0);
        drop(stream);
        // A context dropped while the callee blocks.
        let (ctx, ()) = portal.open_context(blocked_ctx {}).await.unwrap();
        drop(ctx);
        until_idle(&portal).await;
        assert_eq!(portal.run(add { a: 1, b: 2 }).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn explicit_cancels_wait_for_the_acknowledgement() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let call = portal.call(sleep_forever {}).await.unwrap();
        within("the call to start", async {
            while portal.run(running {}).await.unwrap() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        within("cancel", call.cancel()).await.unwrap();
        // Acknowledged means ended: no polling needed.
        assert_eq!(portal.run(running {}).await.unwrap(), 0);

        let stream = portal.open_stream_from(forever {}).await.unwrap();
        within("cancel", stream.cancel()).await.unwrap();
        assert_eq!(portal.run(running {}).await.unwrap(), 0);

        // Cancelling a context: not an error for the canceller; the actor serves on.
        let (ctx, ()) = portal.open_context(blocked_ctx {}).await.unwrap();
        within("cancel", ctx.cancel()).await.unwrap();
        assert_eq!(portal.run(running {}).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn sentinel_and_eof_cancel_the_connections_tasks() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["fixture"]).await;
        let observer = fixture.portal().await;
        for close_with_sentinel in [true, false] {
            let mut channel = Channel::connect(
                &fixture.addr,
                &Uid::new("doomed"),
                &ChannelConfig::default(),
            )
            .await
            .unwrap();
            let cmd = Msg::from(Cmd {
                ns: "fixture".into(),
                func: "sleep_forever".into(),
                kwargs: Payload::empty_map(),
                caller: Uid::new("doomed").into(),
                cid: "sleeper".into(),
                trace: None,
            });
            channel.send(&cmd).await.unwrap();
            let functype = within("functype", channel.recv()).await.unwrap().unwrap();
            assert_eq!(
                functype,
                Msg::FuncType {
                    cid: "sleeper".into(),
                    kind: CallKind::AsyncFunc
                }
            );
            assert_eq!(observer.run(running {}).await.unwrap(), 1);
            if close_with_sentinel {
                let (sender, mut reader) = channel.into_split();
                sender.close().await.unwrap();
                // The peer answers the sentinel with its own.
                assert_eq!(
                    within("sentinel", reader.recv()).await.unwrap(),
                    Some(Msg::Sentinel)
                );
            } else {
                drop(channel);
            }
            until_idle(&observer).await;
        }
    }
}

/// A `cmd` reusing the call id of a call still running is refused on the wire, and the running
/// call is not replaced: it stays cancellable under that id.
#[tokio::test]
async fn a_duplicate_call_id_is_refused_and_the_running_call_goes_on() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["fixture"]).await;
        let observer = fixture.portal().await;
        let mut channel =
            Channel::connect(&fixture.addr, &Uid::new("raw"), &ChannelConfig::default())
                .await
                .unwrap();
        let cmd = |func: &str, kwargs: Payload, cid: &str| {
            Msg::from(Cmd {
                ns: if func == "_cancel_task" {
                    "self"
                } else {
                    "fixture"
                }
                .into(),
                func: func.into(),
                kwargs,
                caller: Uid::new("raw").into(),
                cid: cid.into(),
                trace: None,
            })
        };
        channel
            .send(&cmd("sleep_forever", Payload::empty_map(), "dup"))
            .await
            .unwrap();
        let first = within("functype", channel.recv()).await.unwrap().unwrap();
        assert!(matches!(first, Msg::FuncType { .. }), "{first:?}");
        let add_kwargs =
            Payload::encode(&std::collections::HashMap::from([("a", 1), ("b", 2)])).unwrap();
        channel.send(&cmd("add", add_kwargs, "dup")).await.unwrap();
        let refused = within("the refusal", channel.recv())
            .await
            .unwrap()
            .unwrap();
        let Msg::Error { cid, error } = &refused else {
            panic!("expected an error, got {refused:?}")
        };
        assert_eq!(cid.as_deref(), Some("dup"));
        assert!(error.tb_str.contains("already running"), "{}", error.tb_str);
        assert_eq!(observer.run(running {}).await.unwrap(), 1);
        // The first call is still the one under "dup": cancelling it ends it.
        let target = Payload::encode(&std::collections::HashMap::from([("cid", "dup")])).unwrap();
        channel
            .send(&cmd("_cancel_task", target, "ack"))
            .await
            .unwrap();
        loop {
            let msg = within("the cancel acknowledgement", channel.recv())
                .await
                .unwrap()
                .unwrap();
            match msg {
                Msg::FuncType { .. } => continue,
                Msg::Return { cid, .. } => {
                    assert_eq!(cid, "ack");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        until_idle(&observer).await;
    }
}

#[tokio::test]
async fn sixty_four_concurrent_calls_share_one_portal() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let calls = (0..64).map(|i| {
            let portal = portal.clone();
            tokio::spawn(async move { (i, portal.run(add { a: i, b: 1000 }).await.unwrap()) })
        });
        for call in calls {
            let (i, sum) = within("a call", call).await.unwrap();
            assert_eq!(sum, i + 1000);
        }
    }
}

#[tokio::test]
async fn a_slow_consumer_never_stalls_a_fast_call_on_the_same_connection() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let mut stream = portal.open_stream_from(forever {}).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), 0);
        // The stream is not read while calls run beside it.
        for i in 0..50 {
            assert_eq!(
                within("a fast call", portal.run(add { a: i, b: 1 }))
                    .await
                    .unwrap(),
                i + 1
            );
        }
        // Flow control held the producer back: nothing was lost or overrun.
        for expected in 1..5_000 {
            assert_eq!(stream.next().await.unwrap().unwrap(), expected);
        }
        within("cancel", stream.cancel()).await.unwrap();
    }
}

#[tokio::test]
async fn a_consumer_stopping_after_the_last_item_does_not_hang() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let stream = portal.open_stream_from(forever {}).await.unwrap();
        let ten: Vec<u64> = within("ten items", stream.take(10).try_collect())
            .await
            .unwrap();
        assert_eq!(ten, (0..10).collect::<Vec<_>>());
        // `take` dropped the stream: the producer was cancelled.
        until_idle(&portal).await;
    }
}

#[tokio::test]
async fn a_restarted_local_consumer_receives_every_item_once() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let mut stream = portal.open_stream_from(count { n: 2_000 }).await.unwrap();
        let mut received = Vec::new();
        // Each consumer round is cut short by a timeout, then a new one resumes.
        loop {
            let round = tokio::time::timeout(Duration::from_micros(200), async {
                while let Some(item) = stream.next().await {
                    received.push(item.unwrap());
                }
                true
            })
            .await;
            if round == Ok(true) {
                break;
            }
        }
        assert_eq!(received, (0..2_000).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn context_misuse_is_reported_to_the_caller() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let (ctx, first): (_, i64) = portal.open_context(started_twice {}).await.unwrap();
        assert_eq!(first, 1);
        let err = remote(ctx.result::<()>().await.unwrap_err());
        assert!(err.tb_str.contains("already sent"), "{err}");

        let err = remote(
            portal
                .open_context(stream_before_started {})
                .await
                .unwrap_err(),
        );
        assert!(err.tb_str.contains("after `started`"), "{err}");
    }
}

#[tokio::test]
async fn a_callee_returning_at_once_ends_the_callers_stream() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let (ctx, ()) = portal.open_context(open_and_return {}).await.unwrap();
        {
            let mut stream = ctx.open_stream::<u64>().await.unwrap();
            assert!(within("the stream to end", stream.next()).await.is_none());
        }
        assert!(matches!(
            ctx.open_stream::<u64>().await,
            Err(Error::Usage(_))
        ));
        assert_eq!(ctx.result::<String>().await.unwrap(), "returned");
    }
}

#[tokio::test]
async fn cancelling_the_whole_actor_names_the_canceller() {
    for transport in TRANSPORTS {
        let (mut fixture, portal) = start(transport).await;
        let (ctx, ()) = portal.open_context(blocked_ctx {}).await.unwrap();
        let admin = actor::connect_as("admin", &fixture.addr).await.unwrap();
        assert!(within("cancel_actor", admin.cancel_actor()).await.unwrap());
        match within("the context's end", ctx.result::<()>()).await {
            Err(Error::ContextCancelled { canceller, .. }) => {
                assert_eq!(canceller.unwrap().name, "admin");
            }
            other => panic!("expected ContextCancelled, got {other:?}"),
        }
        let status = within("the actor to exit", fixture.child.wait())
            .await
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

#[tokio::test]
async fn request_response_beside_a_heartbeat_on_one_stream() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let (ctx, ()) = portal.open_context(heartbeat {}).await.unwrap();
        {
            let mut stream = ctx.open_stream::<String>().await.unwrap();
            let (mut beats, mut pongs) = (0, 0);
            for i in 0..5 {
                stream.send(format!("ping:{i}")).await.unwrap();
                loop {
                    let msg = within("a message", stream.next()).await.unwrap().unwrap();
                    if msg == "beat" {
                        beats += 1;
                    } else {
                        assert_eq!(msg, format!("pong:{i}"));
                        pongs += 1;
                        break;
                    }
                }
            }
            while beats < 3 {
                let msg = within("a heartbeat", stream.next()).await.unwrap().unwrap();
                assert_eq!(msg, "beat");
                beats += 1;
            }
            assert_eq!(pongs, 5);
        }
        assert_eq!(within("the result", ctx.result::<u64>()).await.unwrap(), 5);
    }
}

#[tokio::test]
async fn fan_out_gives_every_subscriber_every_item_in_order() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let fan = portal
            .open_stream_from(count { n: 1_000 })
            .await
            .unwrap()
            .fan_out(1_000);
        let subscribers: Vec<_> = (0..22).map(|_| fan.subscribe()).collect();
        fan.start();
        let readers = subscribers.into_iter().map(|mut sub| {
            tokio::spawn(async move {
                let mut items = Vec::new();
                while let Some(item) = sub.recv().await {
                    items.push(item.unwrap());
                }
                items
            })
        });
        for reader in readers {
            let items = within("a subscriber", reader).await.unwrap();
            assert_eq!(items, (0..1_000).collect::<Vec<u64>>());
        }
    }
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_and_continues() {
    let (_fixture, portal) = start(Transport::Unix).await;
    let fan = portal
        .open_stream_from(count { n: 1_000 })
        .await
        .unwrap()
        .fan_out(16);
    let mut slow = fan.subscribe();
    let mut pace = fan.subscribe();
    fan.start();
    // `pace` reads to the end (lagging or not), so the stream is over when it is done.
    within("the stream to end", async {
        while pace.recv().await.is_some() {}
    })
    .await;
    match slow.recv().await {
        Some(Err(Error::Lagged { skipped })) => assert_eq!(skipped, 1_000 - 16),
        other => panic!("expected a lag, got {other:?}"),
    }
    let mut rest = Vec::new();
    while let Some(item) = slow.recv().await {
        rest.push(item.unwrap());
    }
    assert_eq!(rest, (1_000 - 16..1_000).collect::<Vec<u64>>());
}

#[tokio::test]
async fn garbage_on_one_connection_leaves_the_actor_serving_others() {
    for transport in TRANSPORTS {
        let (fixture, portal) = start(transport).await;
        for garbage in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[3, 0, 0, 0, 0xc1, 0xc1, 0xc1],
            &[0xff, 0xff, 0xff, 0x7f, 0x00],
        ] {
            let mut raw = actor_tests::RawClient::connect_handshaken(&fixture.addr).await;
            raw.write(garbage).await;
            // The actor closes that connection...
            raw.read_to_end().await;
            // ...and serves the others.
            assert_eq!(portal.run(add { a: 20, b: 22 }).await.unwrap(), 42);
        }
        let mut raw = actor_tests::RawClient::connect(&fixture.addr).await;
        raw.write(&[0xde, 0xad, 0xbe, 0xef]).await;
        raw.shutdown_write().await;
        raw.read_to_end().await;
        assert_eq!(portal.run(add { a: 1, b: 1 }).await.unwrap(), 2);
    }
}

#[tokio::test]
async fn a_portal_lives_while_its_calls_do_and_closes_after() {
    for transport in TRANSPORTS {
        let (fixture, observer) = start(transport).await;
        let portal = fixture.portal().await;
        let sleeper = portal.call(sleep_forever {}).await.unwrap();
        drop(portal);
        within("the sleeper to run", async {
            while observer.run(running {}).await.unwrap() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        // The call handle kept the connection; dropping it ends the call and the connection.
        drop(sleeper);
        until_idle(&observer).await;
    }
}

#[tokio::test]
async fn flow_control_works_when_the_two_windows_differ() {
    for transport in TRANSPORTS {
        // The actor's window (16) is far below the client's (the default).
        let fixture = FixtureActor::start_with_window(ENTRY, transport, &["fixture"], 16).await;
        let portal = fixture.portal().await;
        let items: Vec<u64> = within(
            "a stream across different windows",
            portal
                .open_stream_from(count { n: 2_000 })
                .await
                .unwrap()
                .try_collect(),
        )
        .await
        .unwrap();
        assert_eq!(items, (0..2_000).collect::<Vec<_>>());
        // Both directions of a context.
        let (ctx, ()) = portal.open_context(flood_ctx { n: 500 }).await.unwrap();
        {
            let mut stream = ctx.open_stream::<u64>().await.unwrap();
            for expected in 0..500 {
                let got = within("an item", stream.next()).await.unwrap().unwrap();
                assert_eq!(got, expected);
            }
        }
        assert_eq!(
            within("the result", ctx.result::<u64>()).await.unwrap(),
            500
        );
        let (ctx, first): (_, i64) = portal.open_context(ping_pong { base: 0 }).await.unwrap();
        assert_eq!(first, 1);
        {
            // Ten pings ahead of the pongs (less than either window), for 200 rounds.
            let mut stream = ctx.open_stream::<String>().await.unwrap();
            for i in 0..210 {
                if i < 200 {
                    within("a send", stream.send(format!("{i}"))).await.unwrap();
                }
                if i >= 10 {
                    let pong = within("a pong", stream.next()).await.unwrap().unwrap();
                    assert_eq!(pong, format!("pong:{}", i - 10));
                }
            }
        }
        assert_eq!(
            within("the result", ctx.result::<u64>()).await.unwrap(),
            200
        );
    }
}

#[tokio::test]
async fn result_credits_unread_items_so_the_callee_can_finish() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        // The caller never opens its stream: `result` reads past the items.
        let (ctx, ()) = portal.open_context(flood_ctx { n: 5_000 }).await.unwrap();
        assert_eq!(
            within("the result", ctx.result::<u64>()).await.unwrap(),
            5_000
        );
    }
}

#[tokio::test]
async fn sending_to_a_callee_that_returned_fails_instead_of_hanging() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let (ctx, ()) = portal.open_context(open_and_return {}).await.unwrap();
        {
            let mut stream = ctx.open_stream::<u64>().await.unwrap();
            let sending = async {
                for i in 0..5_000 {
                    stream.send(i).await?;
                }
                Ok::<(), actor::Error>(())
            };
            // Either every send was accepted, or the end of the context stopped them: no hang.
            let _ = within("the sends to end", sending).await;
        }
        assert_eq!(
            within("the result", ctx.result::<String>()).await.unwrap(),
            "returned"
        );
    }
}

#[tokio::test]
async fn a_hostile_credit_grant_changes_nothing() {
    for transport in TRANSPORTS {
        let (fixture, portal) = start(transport).await;
        let mut channel = Channel::connect(
            &fixture.addr,
            &Uid::new("greedy"),
            &ChannelConfig::default(),
        )
        .await
        .unwrap();
        let flow = Msg::from(Cmd {
            ns: "actor.runtime".into(),
            func: "flow_control".into(),
            kwargs: Payload::encode(&std::collections::HashMap::from([("window", 4u64)])).unwrap(),
            caller: Uid::new("greedy").into(),
            cid: "flow".into(),
            trace: None,
        });
        channel.send(&flow).await.unwrap();
        let stream = Msg::from(Cmd {
            ns: "fixture".into(),
            func: "forever".into(),
            kwargs: Payload::empty_map(),
            caller: Uid::new("greedy").into(),
            cid: "s".into(),
            trace: None,
        });
        channel.send(&stream).await.unwrap();
        channel
            .send(&Msg::Credit {
                cid: "s".into(),
                credit: 1 << 62,
            })
            .await
            .unwrap();
        // The producer still sends at most a window ahead: count what arrives unanswered.
        let mut items = 0;
        while items < 4 {
            if let Msg::Yield { .. } = within("an item", channel.recv()).await.unwrap().unwrap() {
                items += 1;
            }
        }
        // The actor is unharmed (a grant past the limit of its semaphore once panicked the
        // reader).
        assert_eq!(portal.run(add { a: 1, b: 2 }).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn an_infinite_stream_cancelled_by_a_timeout_ends_within_half_a_second() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let consume = async {
            let mut stream = portal.open_stream_from(forever {}).await.unwrap();
            while let Some(item) = stream.next().await {
                item.unwrap();
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_millis(100), consume)
                .await
                .is_err()
        );
        let timed_out = std::time::Instant::now();
        until_idle(&portal).await;
        let took = timed_out.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "remote task ended {took:?} after the timeout"
        );
    }
}

#[tokio::test]
async fn a_connection_breaking_mid_stream_is_a_clear_error() {
    for transport in TRANSPORTS {
        let (mut fixture, portal) = start(transport).await;
        let mut stream = portal.open_stream_from(forever {}).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), 0);
        fixture.child.start_kill().unwrap();
        within("the kill", fixture.child.wait()).await.unwrap();
        let outcome = within("the stream to fail", async {
            loop {
                match stream.next().await {
                    Some(Ok(_)) => continue,
                    other => return other,
                }
            }
        })
        .await;
        assert!(
            matches!(outcome, Some(Err(Error::Disconnected { .. }))),
            "{outcome:?}"
        );
        assert!(stream.next().await.is_none());
        // Further calls fail at once, they do not hang.
        let err = within("a call on a dead portal", portal.run(add { a: 1, b: 1 }))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn a_cancelled_context_function_sees_it_and_cleans_up_before_the_ack() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let (ctx, ()) = portal.open_context(notices_cancel {}).await.unwrap();
        assert!(
            !ctx.is_cancelled(),
            "the caller's end is never cancelled this way"
        );
        // Acknowledged once the remote task has ended: its cleanup is done by then.
        within("the cancel", ctx.cancel()).await.unwrap();
        assert_eq!(portal.run(cleaned_up {}).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn result_can_be_read_with_the_stream_still_in_scope() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        // No annotation: `ping_pong` declares its `started` type.
        let (ctx, first) = portal.open_context(ping_pong { base: 1 }).await.unwrap();
        assert_eq!(first, 2);
        let mut stream = ctx.open_stream::<String>().await.unwrap();
        stream.send("a".to_owned()).await.unwrap();
        let pong = within("a pong", stream.next()).await.unwrap().unwrap();
        assert_eq!(pong, "pong:a");
        // The stream is still alive: `result` ends this side's half (the callee's loop ends on
        // it) and waits for the result.
        let seen: u64 = within("the result", ctx.result()).await.unwrap();
        assert_eq!(seen, 1);
        // The call is over: the stream ends and refuses to send.
        assert!(within("the stream's end", stream.next()).await.is_none());
        assert!(stream.send("late".to_owned()).await.is_err());
    }
}

#[tokio::test]
async fn a_stream_read_in_another_task_ends_when_result_is_read() {
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let (ctx, _) = portal.open_context(ping_pong { base: 0 }).await.unwrap();
        let mut stream = ctx.open_stream::<String>().await.unwrap();
        // Waiting for a pong that never comes (no ping is sent), in a task of its own.
        let reader = tokio::spawn(async move { stream.next().await.is_none() });
        tokio::task::yield_now().await;
        let seen: u64 = within("the result", ctx.result()).await.unwrap();
        assert_eq!(seen, 0);
        let ended = within("the other task's stream to end", reader)
            .await
            .unwrap();
        assert!(ended, "the stream yields nothing after the call's end");
    }
}

/// A request/response function that waits sends `functype` once, then `return` alone (a second
/// `functype` is a protocol error to a tractor 0.1.0a5 caller).
#[tokio::test]
async fn a_function_that_waits_announces_its_functype_once() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["fixture"]).await;
        let mut channel =
            Channel::connect(&fixture.addr, &Uid::new("raw"), &ChannelConfig::default())
                .await
                .unwrap();
        let kwargs = Payload::encode(&std::collections::HashMap::from([("ms", 20)])).unwrap();
        let cmd = Msg::from(Cmd {
            ns: "fixture".into(),
            func: "wait_then".into(),
            kwargs,
            caller: Uid::new("raw").into(),
            cid: "w".into(),
            trace: None,
        });
        channel.send(&cmd).await.unwrap();
        let first = within("functype", channel.recv()).await.unwrap().unwrap();
        assert!(
            matches!(
                first,
                Msg::FuncType {
                    kind: CallKind::AsyncFunc,
                    ..
                }
            ),
            "{first:?}"
        );
        let second = within("return", channel.recv()).await.unwrap().unwrap();
        let Msg::Return { value, .. } = &second else {
            panic!("expected the return right after functype, got {second:?}");
        };
        assert_eq!(value.decode::<u64>().unwrap(), 20);
    }
}

/// Past its cap on running calls, a connection refuses a new call at once (`TooManyCalls`) and
/// keeps reading: a cancel frees a slot for the next call, and EOF ends every call.
#[tokio::test]
async fn past_the_cap_a_call_is_refused_at_once_and_the_connection_keeps_reading() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["fixture"]).await;
        let observer = fixture.portal().await;
        let mut channel =
            Channel::connect(&fixture.addr, &Uid::new("raw"), &ChannelConfig::default())
                .await
                .unwrap();
        let cmd = |ns: &str, func: &str, kwargs: Payload, cid: String| {
            Msg::from(Cmd {
                ns: ns.into(),
                func: func.into(),
                kwargs,
                caller: Uid::new("raw").into(),
                cid: cid.into(),
                trace: None,
            })
        };
        let cap = actor::MAX_CALLS_PER_CONNECTION;
        for i in 0..=cap {
            let call = cmd(
                "fixture",
                "sleep_forever",
                Payload::empty_map(),
                format!("s{i}"),
            );
            channel.send(&call).await.unwrap();
        }
        let mut functypes = 0;
        let refused = loop {
            match within("replies", channel.recv()).await.unwrap().unwrap() {
                Msg::FuncType { .. } => functypes += 1,
                Msg::Error { cid, error } => break (cid, error),
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(refused.0.as_deref(), Some(format!("s{cap}").as_str()));
        assert_eq!(refused.1.type_str, "TooManyCalls", "{}", refused.1.tb_str);
        while functypes < cap {
            let reply = within("the other functypes", channel.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(matches!(reply, Msg::FuncType { .. }), "{reply:?}");
            functypes += 1;
        }
        assert_eq!(observer.run(running {}).await.unwrap(), cap as u64);
        // Still reading: a cancel is served at the cap, and frees a slot.
        let target = Payload::encode(&std::collections::HashMap::from([("cid", "s0")])).unwrap();
        channel
            .send(&cmd("self", "_cancel_task", target, "ack".into()))
            .await
            .unwrap();
        loop {
            match within("the cancel's ack", channel.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Msg::Return { cid, .. } if cid == "ack" => break,
                _ => {}
            }
        }
        let add_kwargs =
            Payload::encode(&std::collections::HashMap::from([("a", 1), ("b", 2)])).unwrap();
        channel
            .send(&cmd(
                "fixture",
                "sleep_forever",
                Payload::empty_map(),
                "again".into(),
            ))
            .await
            .unwrap();
        // A call that finishes at once needs no slot: still answered at the cap.
        channel
            .send(&cmd("fixture", "add", add_kwargs, "add".into()))
            .await
            .unwrap();
        channel
            .send(&cmd(
                "fixture",
                "sleep_forever",
                Payload::empty_map(),
                "over".into(),
            ))
            .await
            .unwrap();
        let mut added = false;
        loop {
            match within("the next replies", channel.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Msg::FuncType { cid, .. } if cid == "again" || cid == "add" => {}
                Msg::Return { cid, value } if cid == "add" => {
                    assert_eq!(value.decode::<i64>().unwrap(), 3);
                    added = true;
                }
                Msg::Error { cid, error } if cid.as_deref() == Some("over") => {
                    assert_eq!(error.type_str, "TooManyCalls");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(added, "the inline call was answered");
        // EOF is read too: every call of the connection ends.
        drop(channel);
        let since = std::time::Instant::now();
        while observer.run(running {}).await.unwrap() != 0 {
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "calls left running after EOF"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A malformed `cmd` is that call's problem, not the connection's: one whose kwargs are not a
/// map is answered with a `TypeError`; one without a string cid is dropped; the connection, and
/// the call running on it, go on. A handshake uid outside the limits is refused.
#[tokio::test]
async fn a_malformed_cmd_is_answered_and_the_connection_goes_on() {
    for transport in TRANSPORTS {
        let fixture = FixtureActor::start(ENTRY, transport, &["fixture"]).await;
        let observer = fixture.portal().await;
        let mut channel =
            Channel::connect(&fixture.addr, &Uid::new("raw"), &ChannelConfig::default())
                .await
                .unwrap();
        let cmd = |func: &str, kwargs: Payload, cid: &str| {
            Msg::from(Cmd {
                ns: "fixture".into(),
                func: func.into(),
                kwargs,
                caller: Uid::new("raw").into(),
                cid: cid.into(),
                trace: None,
            })
        };
        channel
            .send(&cmd("sleep_forever", Payload::empty_map(), "running"))
            .await
            .unwrap();
        let framed = |body: &[u8]| {
            let mut frame = (body.len() as u32).to_le_bytes().to_vec();
            frame.extend_from_slice(body);
            bytes::Bytes::from(frame)
        };
        // {"cmd": ["fixture", "add", 7, ["r", "u"], "bad"]}: kwargs not a map.
        let bad = b"\x81\xa3cmd\x95\xa7fixture\xa3add\x07\x92\xa1r\xa1u\xa3bad";
        channel.sender().send_frame(framed(bad)).await.unwrap();
        // {"cmd": ["fixture", "add", {}, ["r", "u"], 7]}: no string cid, nothing to answer.
        let anonymous = b"\x81\xa3cmd\x95\xa7fixture\xa3add\x80\x92\xa1r\xa1u\x07";
        channel
            .sender()
            .send_frame(framed(anonymous))
            .await
            .unwrap();
        let add_kwargs =
            Payload::encode(&std::collections::HashMap::from([("a", 1), ("b", 2)])).unwrap();
        channel.send(&cmd("add", add_kwargs, "good")).await.unwrap();
        let (mut refused, mut added) = (false, false);
        while !(refused && added) {
            match within("the replies", channel.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Msg::Error { cid, error } if cid.as_deref() == Some("bad") => {
                    assert_eq!(error.type_str, "TypeError");
                    assert!(error.tb_str.contains("cmd.kwargs"), "{}", error.tb_str);
                    refused = true;
                }
                Msg::Return { cid, value } if cid == "good" => {
                    assert_eq!(value.decode::<i64>().unwrap(), 3);
                    added = true;
                }
                Msg::FuncType { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        // The call that was running before is still running.
        assert_eq!(observer.run(running {}).await.unwrap(), 1);
        // A handshake with an empty uid is refused; the actor goes on serving.
        let refused = Channel::connect(
            &fixture.addr,
            &Uid {
                name: String::new(),
                uuid: String::new(),
            },
            &ChannelConfig::default(),
        )
        .await;
        match refused {
            Err(_) => {}
            Ok(mut channel) => {
                // Closed by the actor right after the handshake it refused.
                assert!(within("the refusal", channel.recv()).await.is_err_or_none());
            }
        }
        assert_eq!(observer.run(add { a: 2, b: 2 }).await.unwrap(), 4);
    }
}

trait ErrOrNone {
    fn is_err_or_none(&self) -> bool;
}

impl<T, E> ErrOrNone for Result<Option<T>, E> {
    fn is_err_or_none(&self) -> bool {
        matches!(self, Err(_) | Ok(None))
    }
}

/// A result or stream item too large for a frame is the call's error (`FrameTooLarge`), sent
/// instead of a frame the caller would refuse; the connection goes on.
#[tokio::test]
async fn a_result_over_the_frame_limit_is_an_error_not_a_broken_connection() {
    let over = (actor_ipc::DEFAULT_MAX_FRAME_LEN + 1024) as u64;
    for transport in TRANSPORTS {
        let (_fixture, portal) = start(transport).await;
        let err = within("the call", portal.run(big { size: over }))
            .await
            .unwrap_err();
        let remote = err.as_remote().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(remote.type_str, "FrameTooLarge", "{}", remote.tb_str);
        let mut stream = portal
            .open_stream_from(blobs {
                sizes: vec![10, over],
            })
            .await
            .unwrap();
        assert_eq!(
            within("the first blob", stream.next())
                .await
                .unwrap()
                .unwrap()
                .len(),
            10
        );
        let err = within("the second blob", stream.next())
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.as_remote().map(|r| r.type_str.as_str()),
            Some("FrameTooLarge"),
            "{err}"
        );
        // The same connection still serves.
        assert_eq!(portal.run(add { a: 40, b: 2 }).await.unwrap(), 42);
        assert_eq!(portal.run(big { size: 1000 }).await.unwrap().len(), 1000);
    }
}
