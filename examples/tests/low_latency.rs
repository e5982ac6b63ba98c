//! Low-latency mode (`ACTOR_LOW_LATENCY_SPIN_US`): the daemon answers with its readers
//! spinning while calls come back to back, and parks them when calls stop: an idle actor in
//! this mode costs no CPU.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{process::Stdio, time::Duration};

use actor::{Addr, Value};
use common::within;
use examples::{cpu_time_by_thread, cpu_used_between};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");

#[tokio::test]
async fn a_spinning_actor_answers_and_parks_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let listen = Addr::unix(dir.path().join("fast.sock"));
    let mut daemon = Command::new(DAEMON)
        .args(["--name", "fast", "--listen", &listen.to_string()])
        .env(actor::LOW_LATENCY_ENV, "200")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(daemon.stdout.take().unwrap()).lines();
    within("the daemon to listen", lines.next_line())
        .await
        .unwrap();
    let pid = daemon.id().unwrap();
    let portal = within("connect", actor::connect(&listen)).await.unwrap();
    for i in 0..2_000_i64 {
        let echoed = portal
            .run_from_ns("demo", "echo", Value::Map(vec![("x".into(), i.into())]))
            .await
            .unwrap();
        assert_eq!(echoed.as_i64(), Some(i));
    }
    // The connection stays open, the daemon has nothing to do: over one second (the
    // measurement window, not a wait for an event) it must use under 1% of a CPU.
    let before = cpu_time_by_thread(pid).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_used_between(&before, &cpu_time_by_thread(pid).unwrap());
    assert!(
        used <= Duration::from_millis(10),
        "an idle actor in low-latency mode used {used:?} of CPU in 1 s"
    );
    // And it still answers at once.
    let echoed = portal
        .run_from_ns("demo", "echo", Value::Map(vec![("x".into(), 7.into())]))
        .await
        .unwrap();
    assert_eq!(echoed.as_i64(), Some(7));
}
