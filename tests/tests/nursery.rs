//! Actor trees spawned from a test binary: nurseries, one-shots, failures, teardown.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    future::IntoFuture,
    time::{Duration, Instant},
};

use actor::Error;
use futures::TryStreamExt;

mod work {
    use futures::Stream;

    #[actor::remote(ns = "work")]
    pub(crate) async fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[actor::remote(ns = "work")]
    pub(crate) async fn fail(msg: String) -> actor::Result<()> {
        Err(actor::Error::raise("ValueError", msg))
    }

    #[actor::remote(ns = "work")]
    pub(crate) fn count(n: u64) -> impl Stream<Item = u64> {
        futures::stream::iter(0..n)
    }

    #[actor::remote(ns = "work")]
    pub(crate) async fn pid() -> u32 {
        std::process::id()
    }
}

use work::*;

#[actor::test]
async fn a_daemon_child_serves_calls_and_streams() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let worker = nursery.start_actor("worker").enable("work").await?;
    assert_eq!(worker.peer().name, "worker");
    assert_eq!(worker.run(add { a: 1, b: 2 }).await?, 3);
    assert_ne!(worker.run(pid {}).await?, std::process::id());
    let items: Vec<u64> = worker
        .open_stream_from(count { n: 5 })
        .await?
        .try_collect()
        .await?;
    assert_eq!(items, [0, 1, 2, 3, 4]);
    let started = Instant::now();
    nursery.close().await?;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "graceful close took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[actor::test]
async fn a_one_shot_result_outlives_the_nursery() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let sum = nursery.run_in_actor("adder", add { a: 20, b: 22 }).await?;
    nursery.close().await?;
    assert_eq!(sum.result().await?, 42);
    Ok(())
}

#[actor::test]
async fn a_one_shot_error_reaches_the_nursery_and_cancels_the_rest() {
    let nursery = actor::open_nursery().await.unwrap();
    let _daemon = nursery
        .start_actor("bystander")
        .enable("work")
        .await
        .unwrap();
    let failing = nursery
        .run_in_actor(
            "failer",
            fail {
                msg: "kaboom".into(),
            },
        )
        .await
        .unwrap();
    let err = nursery.close().await.unwrap_err();
    let remote = err.as_remote().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(remote.type_str, "ValueError");
    assert!(remote.tb_str.contains("kaboom"));
    assert_eq!(remote.src_uid.as_ref().unwrap().name, "failer");
    assert!(matches!(failing.result().await, Err(Error::Remote(_))));
}

#[actor::test]
async fn a_child_that_cannot_start_fails_its_own_start_with_its_error_and_only_that() {
    let nursery = actor::open_nursery().await.unwrap();
    let started = tokio::time::timeout(
        Duration::from_secs(10),
        nursery
            .start_actor("broken")
            .enable("no-such-namespace")
            .into_future(),
    )
    .await
    .expect("a startup failure must not hang");
    let err = started.expect_err("a child without its namespace must not start");
    // The child's own error, wrapped by the operation that failed.
    let Error::Spawn { actor, cause } = &err else {
        panic!("not a spawn error: {err:?}");
    };
    assert_eq!(actor, "broken");
    let remote = cause.as_remote().unwrap_or_else(|| panic!("{cause:?}"));
    assert_eq!(remote.type_str, "ModuleNotFoundError");
    assert!(remote.tb_str.contains("no-such-namespace"), "{err}");
    // The nursery goes on: other children start and serve.
    let worker = nursery.start_actor("fine").enable("work").await.unwrap();
    assert_eq!(worker.run(add { a: 1, b: 2 }).await.unwrap(), 3);
    let sum = nursery
        .run_in_actor("adder", add { a: 2, b: 2 })
        .await
        .unwrap();
    // `close` does not report the failed start a second time.
    nursery
        .close()
        .await
        .expect("the failed start was the caller's alone");
    assert_eq!(sum.result().await.unwrap(), 4);
}

#[actor::test]
async fn a_program_that_cannot_be_run_is_named_in_the_error() {
    let nursery = actor::open_nursery().await.unwrap();
    let missing = "/nonexistent/actor-program";
    let err = nursery
        .start_actor("ghost")
        .program(actor::Program::path(missing))
        .await
        .expect_err("a missing program cannot start");
    let text = err.to_string();
    assert!(
        text.contains("ghost") && text.contains(&format!("cannot run {missing}")),
        "{text}"
    );
    nursery.close().await.unwrap();
}
