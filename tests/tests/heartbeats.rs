//! Heartbeats: a child that stops answering (SIGSTOP) is detected within the heartbeat
//! timeout; the calls waiting on it fail with a clear error, it is killed, and its nursery
//! reports it lost.
//!
//! The tree tests proper are `#[ignore]`d and re-run by the plain tests with
//! `ACTOR_HEARTBEAT_TIMEOUT_MS` set (a root reads it before its body runs).

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use actor::Error;
use actor_tests::{process_alive, run_ignored_test_with_env, signal, within};

mod beat {
    #[actor::remote(ns = "beat")]
    pub(crate) async fn pid() -> u32 {
        std::process::id()
    }

    #[actor::remote(ns = "beat")]
    pub(crate) async fn sleep_forever() {
        std::future::pending::<()>().await
    }
}

use beat::*;

/// The timeout the re-run tests use.
const TIMEOUT_MS: u64 = 1000;

#[actor::test]
#[ignore = "run by a_stopped_child_is_detected_within_the_heartbeat_timeout"]
async fn stopped_child() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let child = nursery.start_actor("sleeper").enable("beat").await?;
    within(
        "heartbeats to be agreed with a child of this runtime",
        async {
            while !child.heartbeats_on() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        },
    )
    .await;
    let pid = child.run(pid {}).await?;
    let call = tokio::spawn({
        let child = child.clone();
        async move { child.run(sleep_forever {}).await }
    });
    signal(pid, "-STOP");
    let stopped = Instant::now();
    let failed = within("the call to fail", call).await.unwrap();
    let detected = stopped.elapsed();
    match &failed {
        Err(Error::Disconnected { detail, .. }) => {
            assert!(detail.contains("no heartbeat"), "{detail}");
        }
        other => panic!("expected a lost connection, got {other:?}"),
    }
    let bound = Duration::from_millis(TIMEOUT_MS) * 2;
    assert!(
        detected < bound,
        "detected after {detected:?}, more than {bound:?}"
    );
    within("the stopped child to be killed", async {
        while process_alive(pid) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    println!("a stopped child was detected after {detected:?} (timeout {TIMEOUT_MS} ms)");
    match nursery.close().await {
        Err(e @ Error::ChildUnresponsive { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("sleeper") && text.contains("no heartbeat"),
                "{text}"
            );
            assert!(text.contains("was killed"), "{text}");
        }
        other => panic!("the nursery should report the child lost: {other:?}"),
    }
    Ok(())
}

#[test]
fn a_stopped_child_is_detected_within_the_heartbeat_timeout() {
    run_ignored_test_with_env(
        "stopped_child",
        &[(
            actor::HEARTBEAT_TIMEOUT_ENV,
            TIMEOUT_MS.to_string().as_ref(),
        )],
        Duration::from_secs(60),
    );
}

#[actor::test]
async fn children_of_this_runtime_agree_on_heartbeats_by_default() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let child = nursery.start_actor("child").enable("beat").await?;
    within("heartbeats to be agreed", async {
        while !child.heartbeats_on() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    nursery.close().await
}
