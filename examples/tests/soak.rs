//! `soak`'s contract, checked from outside: a short run prints every figure once, in the form
//! scripts read, counts calls and no errors, exits 0, and leaves no child process behind; a
//! bad duration is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::process::Command;

const SOAK: &str = env!("CARGO_BIN_EXE_soak");

/// How long a 5-second soak may take in all (starting the children and the final teardown
/// included), on a loaded machine.
const RUN_BOUND: Duration = Duration::from_secs(120);

/// A free loopback registrar address, so runs side by side do not share one.
fn registrar() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free loopback port")
        .local_addr()
        .expect("its address")
        .port();
    format!("tcp://127.0.0.1:{port}")
}

/// The `key: N` lines of the output, in order.
fn figures(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .map(|line| {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("a line not of the form `key: N`: {line:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {line:?}"));
            (key.to_owned(), value)
        })
        .collect()
}

fn figure(figures: &[(String, u64)], key: &str) -> u64 {
    let found: Vec<u64> = figures
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "exactly one `{key}:` line in {figures:?}");
    found[0]
}

/// Processes (other than zombies) whose environment holds this run's registrar: the soak's
/// children inherit it.
fn processes_of_run(registrar: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let ours = String::from_utf8_lossy(&environ).contains(registrar);
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            (ours && !zombie).then(|| status.lines().take(1).collect())
        })
        .collect()
}

#[tokio::test]
async fn five_seconds_of_calls_without_errors() {
    let registrar = registrar();
    let out = tokio::time::timeout(
        RUN_BOUND,
        Command::new(SOAK)
            .args(["--duration", "5s"])
            .env("ACTOR_REGISTRAR", &registrar)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("soak --duration 5s ends in time")
    .expect("soak runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "soak failed ({}):\n{stdout}\n{stderr}",
        out.status
    );

    let figures = figures(&stdout);
    let keys: Vec<&str> = figures.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "elapsed_s",
            "calls",
            "errors",
            "cancellations",
            "restarts",
            "rss_start_kib",
            "rss_end_kib",
            "children_rss_start_kib",
            "children_rss_end_kib",
        ],
        "{stdout}"
    );
    assert!(figure(&figures, "elapsed_s") >= 5, "{stdout}");
    assert!(figure(&figures, "calls") > 0, "{stdout}");
    assert_eq!(figure(&figures, "errors"), 0, "{stdout}\n{stderr}");
    // Long calls are cancelled every 250 ms and children restarted every 2 s by default.
    assert!(figure(&figures, "cancellations") > 0, "{stdout}");
    assert!(figure(&figures, "restarts") > 0, "{stdout}");
    for key in [
        "rss_start_kib",
        "rss_end_kib",
        "children_rss_start_kib",
        "children_rss_end_kib",
    ] {
        assert!(figure(&figures, key) > 0, "{key} in {stdout}");
    }

    // The tree is gone with its root: the root reaped its children before exiting.
    let left = processes_of_run(&registrar);
    assert!(left.is_empty(), "processes of the run left: {left:?}");
}

#[tokio::test]
async fn a_bad_duration_is_refused() {
    for bad in ["soon", "5x", "0s", ""] {
        let out = tokio::time::timeout(
            RUN_BOUND,
            Command::new(SOAK)
                .args(["--duration", bad])
                .env("ACTOR_REGISTRAR", registrar())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("soak ends in time")
        .expect("soak runs");
        assert_eq!(out.status.code(), Some(2), "--duration {bad:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--duration"),
            "--duration {bad:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "--duration {bad:?}: {out:?}");
    }
}
