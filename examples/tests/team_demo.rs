//! `team-demo`'s contract, checked from outside: its command line, its output lines, its exit
//! status, its workers in the process table, and a worker killed with SIGKILL mid-run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use common::{stdout_of_success, within};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

const DEMO: &str = env!("CARGO_BIN_EXE_team-demo");

/// The primes below `limit`, by a sieve (independent of the demo's trial division).
fn primes_below(limit: u64) -> u64 {
    let limit = usize::try_from(limit).unwrap();
    let mut composite = vec![false; limit];
    let mut count = 0;
    for n in 2..limit {
        if !composite[n] {
            count += 1;
            let mut m = n * n;
            while m < limit {
                composite[m] = true;
                m += n;
            }
        }
    }
    count
}

/// A free loopback registrar address, so runs side by side do not share one.
fn registrar() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("tcp://127.0.0.1:{port}")
}

/// The fields of the one `SUMMARY` line.
fn summary(stdout: &str) -> Vec<(String, u64)> {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("SUMMARY "))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one SUMMARY line:\n{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some(lines[0]),
        "SUMMARY ends the output"
    );
    lines[0]
        .split_whitespace()
        .skip(1)
        .map(|field| {
            let (key, value) = field.split_once('=').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn field(fields: &[(String, u64)], key: &str) -> u64 {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .1
}

/// Pids of this demo run's workers: processes whose command line says `team-demo worker-N` and
/// whose environment holds the run's `registrar` (inherited from the demo).
fn workers(registrar: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let ours = String::from_utf8_lossy(&environ).contains(registrar);
            (ours && cmdline.contains(DEMO) && cmdline.contains("team-demo worker-")).then_some(pid)
        })
        .collect()
}

#[tokio::test]
async fn failing_first_attempts_are_retried_and_every_task_succeeds() {
    let stdout = stdout_of_success(
        "team-demo",
        Command::new(DEMO)
            .args([
                "--workers",
                "2",
                "--tasks",
                "40",
                "--span",
                "20000",
                "--fail-every",
                "7",
            ])
            .env("ACTOR_REGISTRAR", registrar()),
    )
    .await;
    let fields = summary(&stdout);
    assert_eq!(
        fields,
        [
            ("tasks".to_owned(), 40),
            ("succeeded".to_owned(), 40),
            ("failed".to_owned(), 0),
            ("retried".to_owned(), 5),
            ("replaced".to_owned(), 0)
        ]
    );
    let expected = format!("primes below 800000: {}", primes_below(800_000));
    assert!(stdout.lines().any(|l| l == expected), "{stdout}");
}

#[tokio::test]
async fn a_worker_killed_mid_run_is_replaced_and_every_task_still_succeeds() {
    let registrar = registrar();
    let mut demo = Command::new(DEMO)
        .args(["--workers", "2", "--tasks", "200", "--span", "20000"])
        .env("ACTOR_REGISTRAR", &registrar)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let first = within("the team to be recruited", lines.next_line())
        .await
        .unwrap();
    assert_eq!(first.as_deref(), Some("recruited 2 workers"));
    // Each worker's command line names the program and the member.
    let running = workers(&registrar);
    assert_eq!(running.len(), 2, "two worker processes: {running:?}");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &running[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stdout = String::new();
    while let Some(line) = within("the demo's output", lines.next_line())
        .await
        .unwrap()
    {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let exit = within("the demo to end", demo.wait()).await.unwrap();
    assert!(exit.success(), "{exit}\n{stdout}");
    let fields = summary(&stdout);
    assert_eq!(field(&fields, "tasks"), 200);
    assert_eq!(field(&fields, "succeeded"), 200, "{stdout}");
    assert_eq!(field(&fields, "failed"), 0);
    assert!(field(&fields, "replaced") >= 1, "{stdout}");
    let expected = format!("primes below 4000000: {}", primes_below(4_000_000));
    assert!(stdout.lines().any(|l| l == expected), "{stdout}");
    assert!(workers(&registrar).is_empty(), "a worker outlived the demo");
}
