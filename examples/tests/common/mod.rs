//! Helpers shared by the examples' tests: start an example program and read the addresses it
//! prints, with timeouts that fail loudly.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{process::Stdio, time::Duration};

use actor::Addr;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader, Lines},
    process::{Child, Command},
};

/// How long a test waits for an event.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// Starts `program` with `args` and reads its `listening on ADDR` lines (`count` of them).
/// The child is killed if the test drops it.
pub(crate) async fn start_listening(
    program: &str,
    args: &[String],
    count: usize,
) -> (Child, Vec<Addr>) {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addrs = Vec::new();
    for _ in 0..count {
        let line = within("a listening line", lines.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{program} exited before listening"));
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        addrs.push(url.parse().unwrap());
    }
    (child, addrs)
}

/// Sends a signal (e.g. `-TERM`) to a child.
pub(crate) async fn signal(child: &Child, signal: &str) {
    let pid = child.id().expect("the child is running").to_string();
    let status = Command::new("kill")
        .args([signal, &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Runs `command` to its end (killed if the test gives up), checks it succeeded, and returns
/// its stdout; a failure shows both of its outputs.
pub(crate) async fn stdout_of_success(what: &str, command: &mut Command) -> String {
    let out = within(what, command.kill_on_drop(true).output())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Reads lines until one starts with `prefix`; returns it. Fails on EOF or timeout, with
/// what was read.
pub(crate) async fn line_starting<R: AsyncRead + Unpin>(
    lines: &mut Lines<BufReader<R>>,
    prefix: &str,
) -> String {
    let mut seen = Vec::new();
    let found = within(&format!("a line starting {prefix:?}"), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with(prefix) {
                return Some(line);
            }
            seen.push(line);
        }
        None
    })
    .await;
    found.unwrap_or_else(|| panic!("no line starting {prefix:?}; the output was {seen:#?}"))
}
