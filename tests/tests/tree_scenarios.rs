//! The behaviour of actor trees that users rely on, each scenario in real processes spawned
//! from this test binary (`#[actor::test]`), with its time bound.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    future::IntoFuture,
    sync::Mutex,
    time::{Duration, Instant},
};

use actor::Error;
use actor_tests::{process_alive, remote_traces};

/// Nurseries kept alive by actors that opened them inside a call.
static KEEP: Mutex<Vec<actor::Nursery>> = Mutex::new(Vec::new());

mod scen {
    use super::*;
    use futures::StreamExt;

    #[actor::remote(ns = "scen")]
    pub(crate) async fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[actor::remote(ns = "scen")]
    pub(crate) async fn fail(msg: String) -> actor::Result<()> {
        Err(actor::Error::raise("ValueError", msg))
    }

    #[actor::remote(ns = "scen")]
    pub(crate) async fn sleep_forever() {
        std::future::pending::<()>().await
    }

    #[actor::remote(ns = "scen")]
    pub(crate) async fn pid() -> u32 {
        std::process::id()
    }

    /// From a task started with `tokio::spawn` (not the call's own task), starts a grandchild,
    /// asks its pid, and closes the nursery; returns the pid.
    #[actor::remote(ns = "scen")]
    pub(crate) async fn spawn_grandchild_in_task() -> actor::Result<u32> {
        let task = tokio::spawn(async {
            let nursery = actor::open_nursery().await?;
            let grandchild = nursery.start_actor("grandchild").enable("scen").await?;
            let found = actor::find_actor("grandchild").await?;
            let found = found.ok_or_else(|| actor::Error::Usage("grandchild not found".into()))?;
            let pid = found.run(pid {}).await?;
            drop((grandchild, found));
            nursery.close().await?;
            Ok::<_, actor::Error>(pid)
        });
        task.await
            .map_err(|e| actor::Error::Usage(format!("the spawned task failed: {e}")))?
    }

    /// Writes "graceful" to `path` when this actor stops gracefully (a SIGKILL never runs it).
    #[actor::remote(ns = "scen")]
    pub(crate) async fn mark_teardown(path: String) -> actor::Result<()> {
        let me = actor::Actor::current().ok_or_else(|| actor::Error::Usage("no actor".into()))?;
        me.on_teardown(move || {
            let _ = std::fs::write(&path, "graceful");
        });
        Ok(())
    }

    /// Opens a nursery with one child, `owned`, which marks its graceful teardown in `marker`;
    /// returns its pid once armed.
    async fn own_a_child(marker: String) -> actor::Result<(actor::Nursery, u32)> {
        let nursery = actor::open_nursery().await?;
        let owned = nursery.start_actor("owned").enable("scen").await?;
        owned.run(mark_teardown { path: marker }).await?;
        let pid = owned.run(pid {}).await?;
        Ok((nursery, pid))
    }

    /// Owns a child until cancelled (request/response); writes its pid to `marker.pid` once armed.
    #[actor::remote(ns = "scen")]
    pub(crate) async fn owner_func(marker: String) -> actor::Result<()> {
        let (_nursery, pid) = own_a_child(marker.clone()).await?;
        std::fs::write(format!("{marker}.pid"), pid.to_string())?;
        std::future::pending().await
    }

    /// Owns a child until cancelled (a stream): yields its pid once armed.
    #[actor::remote(ns = "scen")]
    pub(crate) fn owner_stream(marker: String) -> impl futures::Stream<Item = actor::Result<u32>> {
        futures::stream::once(own_a_child(marker)).flat_map(|owned| {
            let (nursery, pid) = match owned {
                Ok(owned) => owned,
                Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
            };
            futures::stream::once(async move { Ok(pid) })
                .chain(futures::stream::pending())
                .map(move |item| {
                    let _owned = &nursery;
                    item
                })
                .boxed()
        })
    }

    /// Owns a child until cancelled (a context): `started` is its pid once armed.
    #[actor::remote(ns = "scen", started = u32)]
    pub(crate) async fn owner_ctx(ctx: actor::Context, marker: String) -> actor::Result<()> {
        let (_nursery, pid) = own_a_child(marker).await?;
        ctx.started(pid).await?;
        std::future::pending().await
    }

    /// Blocks its actor's only runtime thread (non-async code) for `secs`.
    #[actor::remote(ns = "scen")]
    pub(crate) async fn block_for(secs: u64) {
        std::thread::sleep(Duration::from_secs(secs));
    }

    /// Starts a grandchild stuck in blocking code; returns its pid.
    #[actor::remote(ns = "scen")]
    pub(crate) async fn start_blocker() -> actor::Result<u32> {
        let nursery = actor::open_nursery().await?;
        let blocker = nursery.start_actor("blocker").enable("scen").await?;
        let pid = blocker.run(pid {}).await?;
        let call = blocker.call(block_for { secs: 30 }).await?;
        std::mem::forget(call);
        KEEP.lock().unwrap().push(nursery);
        Ok(pid)
    }

    /// Set once this actor's `add_once` was called.
    static CALLED: tokio::sync::Notify = tokio::sync::Notify::const_new();

    /// `a + b`, and tells `call_peer` it was called.
    #[actor::remote(ns = "scen")]
    pub(crate) async fn add_once(a: i64, b: i64) -> i64 {
        CALLED.notify_one();
        a + b
    }

    /// Waits for an actor called `peer`, asks it to add, and returns once the peer has called
    /// this actor too (so neither exits while the other still calls it).
    #[actor::remote(ns = "scen")]
    pub(crate) async fn call_peer(peer: String, a: i64) -> actor::Result<i64> {
        let portal = actor::wait_for_actor(&peer).await?;
        let sum = portal.run(add_once { a, b: 1000 }).await?;
        CALLED.notified().await;
        Ok(sum)
    }

    /// A subtree `breadth` wide and `depth` deep whose leaves fail; returns its errors.
    #[actor::remote(ns = "scen")]
    pub(crate) async fn subtree(breadth: u32, depth: u32) -> actor::Result<()> {
        if depth == 0 {
            let me = actor::Actor::current()
                .map(|a| a.uid().name.clone())
                .unwrap_or_default();
            return Err(actor::Error::raise(
                "ValueError",
                format!("leaf {me} failed"),
            ));
        }
        let nursery = actor::open_nursery().await?;
        for i in 0..breadth {
            nursery
                .run_in_actor(
                    format!("d{}-{i}", depth - 1),
                    subtree {
                        breadth,
                        depth: depth - 1,
                    },
                )
                .await?;
        }
        nursery.close().await
    }
}

#[actor::remote(ns = "scen")]
pub(crate) fn numbers(from: u64, to: u64) -> impl futures::Stream<Item = u64> {
    futures::stream::iter(from..to)
}

/// Starts two streamers of `0..n`, reports their pids, and streams the merge of their
/// items, each once and in order; returns how many it sent.
#[actor::remote(ns = "scen", started = (u32, u32, u32))]
pub(crate) async fn merge(ctx: actor::Context, n: u64) -> actor::Result<u64> {
    use futures::StreamExt;
    let nursery = actor::open_nursery().await?;
    let one = nursery.start_actor("streamer-1").enable("scen").await?;
    let two = nursery.start_actor("streamer-2").enable("scen").await?;
    ctx.started((
        std::process::id(),
        one.run(pid {}).await?,
        two.run(pid {}).await?,
    ))
    .await?;
    let mut a = one.open_stream_from(numbers { from: 0, to: n }).await?;
    let mut b = two.open_stream_from(numbers { from: 0, to: n }).await?;
    let mut out = ctx.open_stream::<u64>().await?;
    let mut sent = 0;
    // Both streams carry the same numbers: take them pairwise, send each once.
    while let (Some(x), Some(y)) = (a.next().await, b.next().await) {
        let (x, y) = (x?, y?);
        out.send(x.min(y)).await?;
        sent += 1;
    }
    drop(out);
    nursery.close().await?;
    Ok(sent)
}

use scen::*;

/// Waits until the registry holds exactly `names` (sorted), at most `bound`.
async fn registry_becomes(names: &[&str], bound: Duration) {
    let started = Instant::now();
    loop {
        let mut now: Vec<String> = actor::get_registry()
            .await
            .unwrap()
            .keys()
            .map(|k| k.rsplit_once('.').unwrap().0.to_owned())
            .collect();
        now.sort();
        if now == names {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "registry {now:?} after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actor::test]
async fn the_registrar_lists_the_root_and_its_children_until_they_exit() {
    let me = "the_registrar_lists_the_root_and_its_children_until_they_exit";
    registry_becomes(&[me], Duration::from_secs(1)).await;
    let nursery = actor::open_nursery().await.unwrap();
    let _child = nursery.start_actor("listed").enable("scen").await.unwrap();
    let mut names = vec!["listed", me];
    names.sort();
    registry_becomes(&names, Duration::from_secs(1)).await;
    let found = actor::find_actor("listed")
        .await
        .unwrap()
        .expect("registered and reachable");
    assert_eq!(found.run(add { a: 1, b: 1 }).await.unwrap(), 2);
    nursery.close().await.unwrap();
    registry_becomes(&[me], Duration::from_secs(1)).await;

    // An error exit unregisters too.
    let nursery = actor::open_nursery().await.unwrap();
    let _ = nursery
        .run_in_actor("doomed", fail { msg: "x".into() })
        .await
        .unwrap();
    assert!(nursery.close().await.is_err());
    registry_becomes(&[me], Duration::from_secs(1)).await;
}

/// The connections this process has accepted on `addr` (its listener's) and still holds open,
/// from `/proc`: TCP sockets whose local port is `addr`'s, Unix sockets bearing its path
/// (an accepted Unix socket carries its listener's address).
fn accepted_connections(addr: &actor::Addr) -> usize {
    let mut mine = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let target = std::fs::read_link(entry.unwrap().path()).unwrap_or_default();
        if let Some(inode) = target
            .to_string_lossy()
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            mine.insert(inode.to_owned());
        }
    }
    let rows = |table: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    match addr {
        actor::Addr::Tcp { port, .. } => ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
            .iter()
            .flat_map(|table| rows(table))
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            .filter(|row| {
                let local_port = row
                    .get(1)
                    .and_then(|local| local.rsplit(':').next())
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok());
                local_port == Some(*port)
                    && row.get(3).map(String::as_str) == Some("01")
                    && row.get(9).is_some_and(|inode| mine.contains(inode))
            })
            .count(),
        actor::Addr::Unix(path) => rows("/proc/self/net/unix")
            .iter()
            // Num RefCount Protocol Flags Type St Inode Path; St 03: connected.
            .filter(|row| {
                row.get(5).map(String::as_str) == Some("03")
                    && row.get(6).is_some_and(|inode| mine.contains(inode))
                    && row.get(7).map(std::path::Path::new) == Some(path.as_path())
            })
            .count(),
    }
}

#[actor::test]
async fn a_child_of_its_registrar_is_listed_once_started_over_its_one_connection() {
    let me = actor::Actor::current().unwrap().addrs()[0].clone();
    let before = accepted_connections(&me);
    let nursery = actor::open_nursery().await.unwrap();
    let _child = nursery.start_actor("prompt").enable("scen").await.unwrap();
    // Its registration went over the connection it has to its parent (this root, which serves
    // the registrar): that is the only connection it made here...
    assert_eq!(
        accepted_connections(&me) - before,
        1,
        "connections from the child"
    );
    // ...and it is listed the moment it has started, not some time later.
    let listed = actor::get_registry().await.unwrap();
    assert!(
        listed.keys().any(|key| key.starts_with("prompt.")),
        "not listed once started: {listed:?}"
    );
    nursery.close().await.unwrap();
}

#[actor::test]
async fn a_child_of_its_registrar_unregisters_over_its_one_connection() {
    let me = actor::Actor::current().unwrap().addrs()[0].clone();
    let myself = actor::connect(&me).await.unwrap();
    let accepted = || async { myself.report().await.unwrap().connections_accepted };
    let before = accepted().await;
    let nursery = actor::open_nursery().await.unwrap();
    nursery.start_actor("brief").enable("scen").await.unwrap();
    nursery.close().await.unwrap();
    // The child connected back once, registered and unregistered over that connection: its
    // stop opened no other.
    assert_eq!(
        accepted().await - before,
        1,
        "connections from the child, its stop included"
    );
    // Unregistered by the time the nursery closed.
    let listed = actor::get_registry().await.unwrap();
    assert!(
        !listed.keys().any(|key| key.starts_with("brief.")),
        "still listed after its stop: {listed:?}"
    );
}

#[actor::test]
async fn two_one_shot_children_find_each_other_by_name() {
    let nursery = actor::open_nursery().await.unwrap();
    let a = nursery
        .run_in_actor(
            "alpha",
            call_peer {
                peer: "beta".into(),
                a: 1,
            },
        )
        .await
        .unwrap();
    let b = nursery
        .run_in_actor(
            "beta",
            call_peer {
                peer: "alpha".into(),
                a: 2,
            },
        )
        .await
        .unwrap();
    nursery.close().await.unwrap();
    assert_eq!(a.result().await.unwrap(), 1001);
    assert_eq!(b.result().await.unwrap(), 1002);
}

#[actor::test]
async fn twenty_five_children_failing_at_once_are_all_reported() {
    let started = Instant::now();
    let nursery = actor::open_nursery().await.unwrap();
    let spawns = (0..25).map(|i| {
        nursery.run_in_actor(
            format!("f{i}"),
            fail {
                msg: format!("failure {i}"),
            },
        )
    });
    for spawned in futures::future::join_all(spawns).await {
        spawned.unwrap();
    }
    let errors = nursery.close().await.unwrap_err().flatten();
    let took = started.elapsed();
    let mut messages = remote_traces(&errors);
    messages.dedup();
    assert_eq!(messages.len(), 25, "{messages:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[actor::test]
async fn nested_failing_leaves_are_relayed_up_with_their_chain() {
    let started = Instant::now();
    let nursery = actor::open_nursery().await.unwrap();
    for i in 0..2 {
        nursery
            .run_in_actor(
                format!("d2-{i}"),
                subtree {
                    breadth: 2,
                    depth: 2,
                },
            )
            .await
            .unwrap();
    }
    let err = nursery.close().await.unwrap_err();
    let took = started.elapsed();
    let text = err.to_string();
    // Eight leaves (four per subtree), each reported through the actors it passed.
    assert_eq!(text.matches("leaf d0-").count(), 8, "{text}");
    assert!(text.contains("d1-0") && text.contains("d2-0"), "{text}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[actor::test]
async fn some_cancels_all_reports_every_failure_and_leaves_no_child() {
    let started = Instant::now();
    let nursery = actor::open_nursery().await.unwrap();
    let mut pids = Vec::new();
    for i in 0..3 {
        let daemon = nursery
            .start_actor(format!("daemon{i}"))
            .enable("scen")
            .await
            .unwrap();
        pids.push(daemon.run(pid {}).await.unwrap());
    }
    nursery
        .run_in_actor("sleeper", sleep_forever {})
        .await
        .unwrap();
    nursery
        .run_in_actor("bad1", fail { msg: "one".into() })
        .await
        .unwrap();
    nursery
        .run_in_actor("bad2", fail { msg: "two".into() })
        .await
        .unwrap();
    let errors = nursery.close().await.unwrap_err().flatten();
    let took = started.elapsed();
    let messages = remote_traces(&errors);
    assert_eq!(messages, ["one", "two"]);
    for pid in pids {
        assert!(gone(pid), "daemon {pid} left behind");
    }
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[actor::test]
async fn cancelling_an_idle_daemon_takes_the_graceful_path() {
    let nursery = actor::open_nursery().await.unwrap();
    let _idle = nursery.start_actor("idle").enable("scen").await.unwrap();
    let started = Instant::now();
    nursery.close().await.unwrap();
    let took = started.elapsed();
    // The forced path would wait a full teardown step (1 s) before SIGTERM.
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[actor::test]
async fn a_grandchild_stuck_in_blocking_code_is_torn_down_anyway() {
    let nursery = actor::open_nursery().await.unwrap();
    let middle = nursery.start_actor("middle").enable("scen").await.unwrap();
    let blocker = middle.run(start_blocker {}).await.unwrap();
    let started = Instant::now();
    nursery
        .run_in_actor(
            "trigger",
            fail {
                msg: "root fails".into(),
            },
        )
        .await
        .unwrap();
    assert!(nursery.close().await.is_err());
    loop {
        if gone(blocker) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "blocker alive after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actor::test]
async fn a_startup_failure_fails_start_actor_with_the_childs_error_not_a_hang() {
    let nursery = actor::open_nursery().await.unwrap();
    let started = tokio::time::timeout(
        Duration::from_secs(5),
        nursery
            .start_actor("broken")
            .enable("missing-namespace")
            .into_future(),
    )
    .await
    .expect("no hang");
    let err = started.expect_err("a child without its namespace must not start");
    assert!(
        matches!(&err, Error::Spawn { actor, cause }
            if actor == "broken"
                && matches!(&**cause, Error::Remote(e) if e.type_str == "ModuleNotFoundError")),
        "{err:?}"
    );
    // Reported once, to the caller: the nursery itself has nothing to report.
    tokio::time::timeout(Duration::from_secs(5), nursery.close())
        .await
        .expect("no hang")
        .expect("the failed start is not reported again");
}

fn gone(pid: u32) -> bool {
    !process_alive(pid)
}

#[actor::test]
async fn a_three_level_tree_streams_exactly_once_in_order_within_half_a_second() {
    use futures::StreamExt;
    let started = Instant::now();
    let nursery = actor::open_nursery().await.unwrap();
    let aggregator = nursery
        .start_actor("aggregator")
        .enable("scen")
        .await
        .unwrap();
    let (ctx, _pids): (_, (u32, u32, u32)) =
        aggregator.open_context(merge { n: 1000 }).await.unwrap();
    let mut received = Vec::new();
    {
        let mut stream = ctx.open_stream::<u64>().await.unwrap();
        while let Some(item) = stream.next().await {
            received.push(item.unwrap());
        }
    }
    let took = started.elapsed();
    assert_eq!(received, (0..1000).collect::<Vec<_>>());
    assert_eq!(ctx.result::<u64>().await.unwrap(), 1000);
    assert!(
        took < Duration::from_millis(500),
        "spawn + stream took {took:?}"
    );
    nursery.close().await.unwrap();
}

#[actor::test]
async fn cancelling_a_tree_mid_stream_ends_cleanly_with_no_process_left() {
    use futures::StreamExt;
    for stop_after in [0, 10, 500] {
        let nursery = actor::open_nursery().await.unwrap();
        let aggregator = nursery
            .start_actor("aggregator")
            .enable("scen")
            .await
            .unwrap();
        let (ctx, (agg, one, two)): (_, (u32, u32, u32)) = aggregator
            .open_context(merge { n: 1_000_000 })
            .await
            .unwrap();
        {
            let mut stream = ctx.open_stream::<u64>().await.unwrap();
            for _ in 0..stop_after {
                stream.next().await.unwrap().unwrap();
            }
        }
        let cancelled = Instant::now();
        nursery.cancel().await;
        drop(ctx);
        let close = nursery.close().await;
        assert!(close.is_ok(), "cancelling is not a failure: {close:?}");
        loop {
            if [agg, one, two].into_iter().all(gone) {
                break;
            }
            assert!(
                cancelled.elapsed() < Duration::from_secs(2),
                "processes left after {:?}",
                cancelled.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[actor::remote(ns = "scen", started = ())]
async fn echo_ctx(ctx: actor::Context) -> actor::Result<()> {
    ctx.started(()).await
}

#[actor::remote(ns = "scen")]
async fn context_to_myself() -> actor::Result<String> {
    let me = actor::Actor::current().unwrap();
    let portal = actor::connect(&me.addrs()[0]).await?;
    match portal.open_context(echo_ctx {}).await {
        Err(actor::Error::Usage(text)) => Ok(text),
        other => Err(actor::Error::raise("AssertionError", format!("{other:?}"))),
    }
}

#[actor::test]
async fn misuse_is_a_clear_error() {
    // A second root inside a running one.
    let nested = actor::run_root(actor::RootOptions::new("again"), || async {});
    assert!(
        matches!(&nested, Err(Error::Usage(t)) if t.contains("already runs")),
        "{nested:?}"
    );
    // A context to one's own actor.
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery.start_actor("selfish").enable("scen").await.unwrap();
    let text = child.run(context_to_myself {}).await.unwrap();
    assert!(text.contains("own actor"), "{text}");
    nursery.close().await.unwrap();
}

/// Registers a teardown hook that writes `marker`, then fails or waits.
#[actor::remote(ns = "scen")]
async fn hooked(marker: String, fail_now: bool) -> actor::Result<()> {
    actor::Actor::current()
        .unwrap()
        .on_teardown(move || std::fs::write(&marker, b"ran").unwrap());
    if fail_now {
        return Err(actor::Error::raise("ValueError", "hooked failed"));
    }
    std::future::pending::<()>().await;
    Ok(())
}

#[actor::test]
async fn teardown_hooks_run_when_an_actor_errors_and_when_it_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let marker = |name: &str| dir.path().join(name).display().to_string();
    let nursery = actor::open_nursery().await.unwrap();
    // Cancelled: a daemon whose call is pending when the nursery closes.
    let daemon = nursery
        .start_actor("cancelled")
        .enable("scen")
        .await
        .unwrap();
    let pending = daemon
        .call(hooked {
            marker: marker("cancelled"),
            fail_now: false,
        })
        .await
        .unwrap();
    // Errors: a one-shot whose function fails.
    nursery
        .run_in_actor(
            "errored",
            hooked {
                marker: marker("errored"),
                fail_now: true,
            },
        )
        .await
        .unwrap();
    assert!(nursery.close().await.is_err());
    drop(pending);
    for name in ["cancelled", "errored"] {
        let ran = std::fs::read(dir.path().join(name)).unwrap_or_default();
        assert_eq!(ran, b"ran", "the {name} actor's hook did not run");
    }
}

/// Registered, never enabled anywhere.
#[actor::remote(ns = "hidden")]
async fn hidden() -> u64 {
    7
}

/// In a grandchild: finds its parent by name and calls back into it, including calls the
/// parent must refuse; returns what happened, one entry per call.
#[actor::remote(ns = "scen")]
async fn call_back(parent: String) -> actor::Result<Vec<String>> {
    let portal = actor::find_actor(&parent)
        .await?
        .expect("the parent is registered");
    let sum = portal.run(add { a: 2, b: 3 }).await?;
    let refused = match portal.run(hidden {}).await {
        Err(actor::Error::Remote(e)) => e.type_str,
        other => format!("{other:?}"),
    };
    let missing = match portal
        .run_from_ns("scen", "nope", actor::Value::Map(vec![]))
        .await
    {
        Err(actor::Error::Remote(e)) => e.type_str,
        other => format!("{other:?}"),
    };
    Ok(vec![sum.to_string(), refused, missing])
}

/// In a child: starts a one-shot grandchild that calls back into this actor.
#[actor::remote(ns = "scen")]
async fn host_call_back() -> actor::Result<Vec<String>> {
    let me = actor::Actor::current().unwrap().uid().name.clone();
    let nursery = actor::open_nursery().await?;
    let outcome = nursery
        .run_in_actor("caller", call_back { parent: me })
        .await?;
    nursery.close().await?;
    outcome.result().await
}

#[actor::test]
async fn a_child_calls_back_into_its_parent_found_by_name() {
    let nursery = actor::open_nursery().await.unwrap();
    let parent = nursery.start_actor("host").enable("scen").await.unwrap();
    let seen = parent.run(host_call_back {}).await.unwrap();
    assert_eq!(seen, ["5", "ModuleNotExposed", "FunctionNotFound"]);
    nursery.close().await.unwrap();
}

#[actor::test]
async fn duplicate_names_are_both_registered_and_both_end_with_the_nursery() {
    let me = "duplicate_names_are_both_registered_and_both_end_with_the_nursery";
    let nursery = actor::open_nursery().await.unwrap();
    let a = nursery.start_actor("twin").enable("scen").await.unwrap();
    let b = nursery.start_actor("twin").enable("scen").await.unwrap();
    let pids = [a.run(pid {}).await.unwrap(), b.run(pid {}).await.unwrap()];
    let mut names = vec!["twin", "twin", me];
    names.sort();
    registry_becomes(&names, Duration::from_secs(1)).await;
    let found = actor::find_actor("twin").await.unwrap().unwrap();
    assert!(pids.contains(&found.run(pid {}).await.unwrap()));
    drop(found);
    nursery.close().await.unwrap();
    registry_becomes(&[me], Duration::from_secs(1)).await;
    assert!(pids.into_iter().all(gone));
}

/// Exits this actor's process at once with `code`.
#[actor::remote(ns = "scen")]
async fn crash(code: i32) {
    std::process::exit(code)
}

#[actor::test]
async fn a_daemon_crash_is_reported_even_when_close_follows() {
    let nursery = actor::open_nursery().await.unwrap();
    let daemon = nursery.start_actor("crasher").enable("scen").await.unwrap();
    assert!(daemon.run(crash { code: 3 }).await.is_err());
    let err = nursery.close().await.unwrap_err();
    assert!(err.to_string().contains("exit status 3"), "{err}");
}

#[actor::test]
async fn a_one_shot_crash_is_reported_with_its_exit_status() {
    let nursery = actor::open_nursery().await.unwrap();
    let crashed = nursery
        .run_in_actor("crasher", crash { code: 4 })
        .await
        .unwrap();
    let err = nursery.close().await.unwrap_err();
    assert!(err.to_string().contains("exit status 4"), "{err}");
    assert!(crashed.result().await.is_err());
}

#[actor::test]
async fn a_killed_child_is_reported_with_its_name_pid_and_signal() {
    let nursery = actor::open_nursery().await.unwrap();
    let victim = nursery.start_actor("victim").enable("scen").await.unwrap();
    let victim_pid = victim.run(pid {}).await.unwrap();
    actor_tests::signal(victim_pid, "-KILL");
    let err = tokio::time::timeout(Duration::from_secs(5), nursery.close())
        .await
        .expect("no hang")
        .unwrap_err();
    let exited = err
        .flatten()
        .into_iter()
        .find(|e| matches!(e, Error::ChildExited { .. }))
        .unwrap_or_else(|| panic!("no ChildExited in the nursery's report"));
    assert_eq!(
        exited.to_string(),
        format!(
            "child actor victim (pid {victim_pid}) ended unexpectedly: killed by signal 9 (SIGKILL)"
        )
    );
    assert!(matches!(
        exited,
        Error::ChildExited {
            pid: Some(p),
            exit: actor::ChildExit::Signal { number: 9, .. },
            ..
        } if p == victim_pid
    ));
    assert_eq!(exited.type_str(), "ChildExited");
}

#[actor::test]
async fn a_close_cut_short_by_a_timeout_still_leaves_no_child() {
    let nursery = actor::open_nursery().await.unwrap();
    let daemon = nursery.start_actor("daemon").enable("scen").await.unwrap();
    let daemon_pid = daemon.run(pid {}).await.unwrap();
    nursery
        .run_in_actor("forever", sleep_forever {})
        .await
        .unwrap();
    // The one-shot never ends, so close waits; the timeout drops it midway.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), nursery.close())
            .await
            .is_err()
    );
    let dropped = Instant::now();
    while !gone(daemon_pid) {
        assert!(
            dropped.elapsed() < Duration::from_secs(1),
            "daemon left behind"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actor::test]
async fn a_child_started_after_a_failure_cannot_hang_close() {
    let nursery = actor::open_nursery().await.unwrap();
    let daemon = nursery.start_actor("crasher").enable("scen").await.unwrap();
    assert!(daemon.run(crash { code: 5 }).await.is_err());
    // Started while the nursery tears down after the crash: refused or cancelled.
    let _late = nursery.run_in_actor("late", sleep_forever {}).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), nursery.close())
        .await
        .expect("close must not hang");
    assert!(closed.unwrap_err().to_string().contains("exit status 5"));
}

#[actor::test]
async fn tasks_started_with_tokio_spawn_see_their_actor_in_the_root_and_in_children() {
    let me = actor::Actor::current()
        .expect("the test's root")
        .uid()
        .clone();
    let spawned = tokio::spawn(async move {
        let seen = actor::Actor::current().map(|a| a.uid().clone());
        assert_eq!(seen, Some(me), "a spawned task sees the root");
        let nursery = actor::open_nursery().await?;
        let child = nursery.start_actor("spawned-child").enable("scen").await?;
        // Found through this test's own registrar, which only the root's actor knows.
        let found = actor::find_actor("spawned-child").await?;
        let child_pid = found.expect("registered").run(pid {}).await?;
        let grandchild_pid = child.run(spawn_grandchild_in_task {}).await?;
        drop(child);
        nursery.close().await?;
        Ok::<_, actor::Error>((child_pid, grandchild_pid))
    });
    let (child_pid, grandchild_pid) = tokio::time::timeout(Duration::from_secs(10), spawned)
        .await
        .expect("the spawned task must finish")
        .expect("the spawned task must not panic")
        .expect("the spawned task's tree");
    assert!(gone(child_pid) && gone(grandchild_pid));
}

/// A fresh marker path for one owned child's graceful teardown.
fn teardown_marker(test: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "actor-teardown-{test}-{}-{}",
        std::process::id(),
        actor::Uid::new("m").uuid
    ))
}

/// After its owner's call was cancelled: the owned child ran its teardown (no SIGKILL) and is
/// gone, and it unregistered.
async fn assert_owned_child_closed_gracefully(marker: &std::path::Path, pid: u32) {
    let text = std::fs::read_to_string(marker).unwrap_or_default();
    assert_eq!(
        text, "graceful",
        "the owned child was not torn down gracefully"
    );
    let _ = std::fs::remove_file(marker);
    let since = Instant::now();
    while !gone(pid) {
        assert!(
            since.elapsed() < Duration::from_secs(3),
            "owned child alive"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        actor::find_actor("owned").await.unwrap().is_none(),
        "still registered"
    );
}

#[actor::test]
async fn a_cancelled_call_closes_the_nursery_it_owns_gracefully() {
    use futures::StreamExt;
    let nursery = actor::open_nursery().await.unwrap();
    let owner = nursery.start_actor("owner").enable("scen").await.unwrap();

    // A context: cancelled by the caller, acknowledged once the remote task has ended.
    let marker = teardown_marker("ctx");
    let path = marker.to_string_lossy().into_owned();
    let (ctx, pid) = owner
        .open_context(owner_ctx { marker: path })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), ctx.cancel())
        .await
        .expect("cancel acknowledged")
        .unwrap();
    assert_owned_child_closed_gracefully(&marker, pid).await;

    // A stream.
    let marker = teardown_marker("stream");
    let path = marker.to_string_lossy().into_owned();
    let mut stream = owner
        .open_stream_from(owner_stream { marker: path })
        .await
        .unwrap();
    let pid = stream.next().await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(10), stream.cancel())
        .await
        .expect("cancel acknowledged")
        .unwrap();
    assert_owned_child_closed_gracefully(&marker, pid).await;

    // A request/response function (its nursery opened while it was served inline).
    let marker = teardown_marker("func");
    let path = marker.to_string_lossy().into_owned();
    let call = owner
        .call(owner_func {
            marker: path.clone(),
        })
        .await
        .unwrap();
    let pid_file = format!("{path}.pid");
    let since = Instant::now();
    let pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.parse().ok())
        {
            break pid;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "owner_func never armed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = std::fs::remove_file(&pid_file);
    tokio::time::timeout(Duration::from_secs(10), call.cancel())
        .await
        .expect("cancel acknowledged")
        .unwrap();
    assert_owned_child_closed_gracefully(&marker, pid).await;

    drop(owner);
    nursery.close().await.unwrap();
}
