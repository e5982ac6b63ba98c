//! Low-latency mode (`ACTOR_LOW_LATENCY_SPIN_US`): the daemon answers with its readers
//! spinning while calls come back to back, and parks them when calls stop: an idle actor in
//! this mode costs no CPU.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{collections::HashMap, process::Stdio, time::Duration};

use actor::{Addr, Value};
use common::within;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");

/// The CPU time each thread of `pid` has used so far, in nanoseconds, by thread id.
///
/// Read from each thread's `schedstat` (time on a CPU, in ns) rather than the process's
/// `stat`: `stat` counts in 10 ms clock ticks and rounds user and system time apart, so an
/// idle process can appear to gain 20 ms between two readings, twice the budget measured here.
fn cpu_time_by_thread(pid: u32) -> HashMap<u32, u64> {
    let mut times = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let entry = entry.unwrap();
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A thread can end between the listing and the read; it then has nothing to add.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let on_cpu_ns: u64 = stat.split_whitespace().next().unwrap().parse().unwrap();
        times.insert(tid, on_cpu_ns);
    }
    times
}

/// The CPU time `pid`'s threads used between two readings (a thread born in between counts
/// whole; one that ended in between is not seen, and an idle actor starts no threads).
fn cpu_used_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> Duration {
    let ns = after
        .iter()
        .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    Duration::from_nanos(ns)
}

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
    let before = cpu_time_by_thread(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_used_between(&before, &cpu_time_by_thread(pid));
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
