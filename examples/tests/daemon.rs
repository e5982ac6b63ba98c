//! The `daemon` example's public contract, checked from outside in real processes: its command
//! line, its `listening on` lines, every `demo` function, and its clean exits on SIGINT,
//! SIGTERM and the `cancel` runtime call.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use actor::{Addr, Error, Portal};
use common::{signal, start_listening, within};
use examples::demo;
use futures::{StreamExt, TryStreamExt};
use tokio::process::Child;

const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");

struct Daemon {
    child: Child,
    addrs: Vec<Addr>,
    _dir: tempfile::TempDir,
}

/// Starts the daemon on a Unix socket and a TCP port, reading both `listening on` lines.
async fn start(name: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let unix = Addr::unix(dir.path().join("d.sock"));
    let args = [
        "--name",
        name,
        "--listen",
        &unix.to_string(),
        "--listen",
        "tcp://127.0.0.1:0",
    ]
    .map(String::from);
    let (child, addrs) = start_listening(DAEMON, &args, 2).await;
    assert_eq!(addrs[0], unix);
    assert!(matches!(&addrs[1], Addr::Tcp { port, .. } if *port != 0));
    Daemon {
        child,
        addrs,
        _dir: dir,
    }
}

async fn until_idle(portal: &Portal) {
    within("demo calls to end", async {
        while portal.run(demo::running {}).await.unwrap() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn serves_every_demo_function_on_both_addresses() {
    let daemon = start("d1").await;
    for addr in &daemon.addrs {
        let portal = within("connect", actor::connect(addr)).await.unwrap();
        assert_eq!(portal.peer().name, "d1");
        assert_eq!(portal.run(demo::add { a: 2, b: -5 }).await.unwrap(), -3);
        assert_eq!(
            portal.run(demo::echo { x: u64::MAX }).await.unwrap(),
            u64::MAX
        );

        let counted: Vec<u64> = portal
            .open_stream_from(demo::count { n: 100 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(counted, (0..100).collect::<Vec<_>>());

        let blobs: Vec<actor::Blob> = portal
            .open_stream_from(demo::blob { n: 3, size: 70_000 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(blobs.len(), 3);
        assert!(blobs.iter().all(|b| b.len() == 70_000));
        // A size the daemon would have to allocate beyond any frame is refused, not tried.
        let mut huge = portal
            .open_stream_from(demo::blob {
                n: 1,
                size: 1 << 40,
            })
            .await
            .unwrap();
        let err = within("the refusal", huge.next())
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.as_remote().unwrap().type_str, "ValueError", "{err}");

        let (ctx, start): (_, i64) = portal
            .open_context(demo::echo_ctx { start: 7 })
            .await
            .unwrap();
        assert_eq!(start, 7);
        {
            let mut stream = ctx.open_stream::<String>().await.unwrap();
            for word in ["a", "b", "c"] {
                stream.send(word.to_owned()).await.unwrap();
                assert_eq!(stream.next().await.unwrap().unwrap(), word);
            }
        }
        assert_eq!(ctx.result::<String>().await.unwrap(), "done");

        match portal
            .run(demo::fail {
                msg: "kaboom".into(),
            })
            .await
        {
            Err(Error::Remote(e)) => {
                assert_eq!(e.type_str, "ValueError");
                assert!(e.tb_str.contains("kaboom"));
                assert_eq!(e.src_uid.unwrap().name, "d1");
            }
            other => panic!("expected a ValueError, got {other:?}"),
        }

        // running() counts demo calls other than itself; a dropped call stops counting.
        assert_eq!(portal.run(demo::running {}).await.unwrap(), 0);
        let sleeper = portal.call(demo::sleep_forever {}).await.unwrap();
        within("the sleeper to run", async {
            while portal.run(demo::running {}).await.unwrap() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        drop(sleeper);
        until_idle(&portal).await;
    }
}

/// Sends `signal` to the daemon and checks it exits cleanly and removes its socket.
async fn exits_cleanly_on(name: &str) {
    let mut daemon = start("d2").await;
    signal(&daemon.child, name).await;
    let exit = within("the daemon to exit", daemon.child.wait())
        .await
        .unwrap();
    assert!(exit.success(), "{name}: {exit}");
    let Addr::Unix(path) = &daemon.addrs[0] else {
        unreachable!()
    };
    assert!(!path.exists(), "the socket file was left behind");
}

#[tokio::test]
async fn exits_cleanly_on_sigterm() {
    exits_cleanly_on("-TERM").await;
}

#[tokio::test]
async fn exits_cleanly_on_sigint() {
    exits_cleanly_on("-INT").await;
}

#[tokio::test]
async fn exits_cleanly_on_the_cancel_runtime_call() {
    let mut daemon = start("d3").await;
    let portal = actor::connect(&daemon.addrs[1]).await.unwrap();
    // A call in flight does not hold the exit up.
    let _sleeper = portal.call(demo::sleep_forever {}).await.unwrap();
    assert!(within("cancel", portal.cancel_actor()).await.unwrap());
    let exit = within("the daemon to exit", daemon.child.wait())
        .await
        .unwrap();
    assert!(exit.success(), "{exit}");
}

#[test]
fn functions_registered_in_a_library_crate_are_found() {
    // `demo` lives in the `examples` library; this test binary links it like any program.
    for name in [
        "add",
        "echo",
        "count",
        "blob",
        "echo_ctx",
        "sleep_forever",
        "fail",
        "running",
    ] {
        let registration = actor::registry::lookup(demo::NS, name)
            .unwrap_or_else(|| panic!("demo.{name} is not registered"));
        assert_eq!(registration.name, name);
    }
    assert_eq!(
        actor::registry::lookup(demo::NS, "add")
            .unwrap()
            .handler
            .kind(),
        actor_ipc::CallKind::AsyncFunc
    );
}
