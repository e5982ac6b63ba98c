//! Authentication, checked from outside with the real programs: the `daemon` and `registrar`
//! given `--auth-file` serve only peers that prove the secret, refuse the others with a clear
//! log line (a plain tractor 0.1.0a5-style peer included), and keep serving.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Stdio};

use actor::{
    Addr, Uid,
    ipc::{Cmd, Msg, Payload, Value},
};
use common::within;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");
const REGISTRAR: &str = env!("CARGO_BIN_EXE_registrar");
const CALL: &str = env!("CARGO_BIN_EXE_call");

/// Writes a fresh owner-only secret file.
fn secret_file(dir: &tempfile::TempDir, name: &str, secret: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A running program with its stderr lines readable as they come.
struct Running {
    child: Child,
    addr: Addr,
    stderr: mpsc::UnboundedReceiver<String>,
}

impl Running {
    /// Waits for a stderr line containing `text`.
    async fn logged(&mut self, text: &str) -> String {
        within(&format!("a log line containing {text:?}"), async {
            loop {
                let line = self
                    .stderr
                    .recv()
                    .await
                    .expect("the program's stderr ended");
                if line.contains(text) {
                    return line;
                }
            }
        })
        .await
    }
}

/// Starts `program` and reads its first `listening on` line.
async fn start(program: &str, args: &[&str]) -> Running {
    let mut child = Command::new(program)
        .args(args)
        .env("ACTOR_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (lines, stderr) = mpsc::unbounded_channel();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let line = within("a listening line", stdout.next_line())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{program} exited before listening"));
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap();
    Running {
        child,
        addr,
        stderr,
    }
}

/// Runs the `call` example; returns (success, stdout, stderr).
async fn call(addr: &Addr, auth_file: Option<&PathBuf>, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(CALL);
    if let Some(path) = auth_file {
        command.arg("--auth-file").arg(path);
    }
    let out = within(
        "the call program",
        command
            .arg(addr.to_string())
            .args(args)
            .env_remove(actor::AUTH_FILE_ENV)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_daemon_with_a_secret_serves_only_peers_that_prove_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "secret", "correct horse battery staple, 32 bytes");
    let wrong = secret_file(&dir, "wrong", "another secret of enough length!!");
    for listen in [
        format!("unix://{}", dir.path().join("d.sock").display()),
        "tcp://127.0.0.1:0".to_owned(),
    ] {
        let mut daemon = start(
            DAEMON,
            &[
                "--name",
                "guarded",
                "--listen",
                &listen,
                "--auth-file",
                secret.to_str().unwrap(),
            ],
        )
        .await;
        let addr = daemon.addr.clone();

        let (ok, out, _) = call(&addr, Some(&secret), &["demo", "add", "a=1", "b=2"]).await;
        assert!(ok && out == "3", "with the secret: {out}");

        let (ok, _, err) = call(&addr, None, &["demo", "add", "a=1", "b=2"]).await;
        assert!(!ok);
        assert!(err.contains("requires authentication"), "{err}");
        daemon.logged("did not authenticate").await;

        let (ok, _, err) = call(&addr, Some(&wrong), &["demo", "add", "a=1", "b=2"]).await;
        assert!(!ok);
        assert!(err.contains("wrong secret"), "{err}");
        daemon.logged("different secret").await;

        // A tractor 0.1.0a5-style peer: its uid, then at once `self cancel`, without reading.
        // It is cut off before its handshake counts; the cancel never runs.
        let (mut read, mut raw) = actor::ipc::transport::Transport::connect(&addr)
            .await
            .unwrap()
            .into_split();
        let me = Uid::new("intruder");
        let cancel = Msg::Cmd(Box::new(Cmd {
            ns: "self".into(),
            func: "cancel".into(),
            kwargs: Payload::from_value(&Value::Map(Vec::new())),
            caller: me.clone().into(),
            cid: "c1".into(),
            trace: None,
        }));
        let mut bytes = Msg::Handshake(me).to_frame().unwrap().to_vec();
        bytes.extend_from_slice(&cancel.to_frame().unwrap());
        raw.write_all(&bytes).await.unwrap();
        // Read until the daemon closes: what it sent is only its challenge.
        let mut got = Vec::new();
        within("the daemon to close the intruder's connection", async {
            let _ = read.read_to_end(&mut got).await;
        })
        .await;
        let body = got.get(4..).unwrap_or_default();
        assert!(
            body.windows(4).any(|w| w == b"auth"),
            "the daemon sent its challenge"
        );
        daemon.logged("intruder").await;

        let (ok, out, _) = call(&addr, Some(&secret), &["demo", "add", "a=2", "b=2"]).await;
        assert!(ok && out == "4", "still serving after the refusals: {out}");
        assert!(daemon.child.try_wait().unwrap().is_none());
    }
}

#[tokio::test]
async fn a_registrar_with_a_secret_takes_registrations_only_from_actors_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "secret", "the registrar's secret, long enough");
    let reg_sock = format!("unix://{}", dir.path().join("reg.sock").display());
    let mut registrar = start(
        REGISTRAR,
        &[
            "--listen",
            &reg_sock,
            "--auth-file",
            secret.to_str().unwrap(),
        ],
    )
    .await;

    // Without the secret, a daemon cannot register: it says why, serves anyway (registration
    // never stops an actor), and is not listed.
    let mut stranger = start(
        DAEMON,
        &[
            "--name",
            "stranger",
            "--listen",
            "tcp://127.0.0.1:0",
            "--registrar",
            &reg_sock,
        ],
    )
    .await;
    stranger.logged("requires authentication").await;
    registrar.logged("did not authenticate").await;
    let (ok, out, err) = call(
        &registrar.addr,
        Some(&secret),
        &["self", "find_actor", "name=stranger"],
    )
    .await;
    assert!(ok && out == "nil", "{out} {err}");

    // With it, it registers and can be found.
    let daemon = start(
        DAEMON,
        &[
            "--name",
            "member",
            "--listen",
            "tcp://127.0.0.1:0",
            "--registrar",
            &reg_sock,
            "--auth-file",
            secret.to_str().unwrap(),
        ],
    )
    .await;
    let (ok, out, err) = call(
        &registrar.addr,
        Some(&secret),
        &["self", "find_actor", "name=member"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&daemon.addr.to_wire().port.to_string()),
        "found at its address: {out}"
    );
    let (ok, _, err) = call(
        &registrar.addr,
        None,
        &["self", "find_actor", "name=member"],
    )
    .await;
    assert!(!ok && err.contains("requires authentication"), "{err}");
}
