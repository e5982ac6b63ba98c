//! Interoperability with the reference peer, Python tractor 0.1.0a5, in real processes.
//!
//! The reference peer is installed by `../shared/tools/install-tractor-a5.sh` into
//! `target/tractor-a5-venv` (kept between runs). If it cannot be installed, these tests fail:
//! they are never skipped silently.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{path::PathBuf, sync::OnceLock};

use common::{start_listening, within};
use tokio::process::Command;

const REGISTRAR: &str = env!("CARGO_BIN_EXE_registrar");
const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The reference peer's python, installing it on first use.
fn tractor_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let shared = std::env::var_os("ACTOR_SHARED_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace().join("../shared"));
            let script = shared.join("tools/install-tractor-a5.sh");
            let venv = workspace().join("target/tractor-a5-venv");
            let out = std::process::Command::new("bash")
                .arg(&script)
                .arg(&venv)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "installing tractor 0.1.0a5 failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let python = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let python = PathBuf::from(python);
            assert!(
                python.is_file(),
                "the installer printed no python: {python:?}"
            );
            python
        })
        .clone()
}

/// Python tractor finds a Rust actor through a Rust registrar and calls all three kinds of
/// its functions, abandons a stream (the Rust task must end), and cancels the actor.
#[tokio::test]
async fn python_calls_rust() {
    let python = tractor_python();
    let (_registrar, addrs) = start_listening(
        REGISTRAR,
        &["--listen".into(), "tcp://127.0.0.1:0".into()],
        1,
    )
    .await;
    let actor::Addr::Tcp { port, .. } = &addrs[0] else {
        unreachable!()
    };
    let args = [
        "--name",
        "rust-daemon",
        "--listen",
        "tcp://127.0.0.1:0",
        "--registrar",
        &addrs[0].to_string(),
    ]
    .map(String::from);
    let (mut daemon, _) = start_listening(DAEMON, &args, 1).await;
    let out = within(
        "the python side",
        Command::new(&python)
            .arg(workspace().join("tests/interop/python_calls_rust.py"))
            .arg(port.to_string())
            .arg("rust-daemon")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok   context result"), "{stdout}");
    // Portal.cancel_actor() from Python stopped the Rust actor cleanly.
    let exit = within("the daemon to exit", daemon.wait()).await.unwrap();
    assert!(exit.success(), "{exit}");
}
