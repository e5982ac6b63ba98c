//! The wire demo in two real processes: the README's demo end to end, and a handshake plus a
//! call's frames against `wire-demo serve` over TCP and over a Unix socket.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use actor_ipc::{Addr, CallKind, Channel, ChannelConfig, Cmd, Msg, Payload, Uid};
use common::{stdout_of_success, within};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const DEMO: &str = env!("CARGO_BIN_EXE_wire-demo");

/// The tree demo with a registrar of its own, so tests running side by side share none.
fn tree_demo(dir: &tempfile::TempDir) -> Command {
    let registrar = format!("unix://{}", dir.path().join("registrar.sock").display());
    let mut command = Command::new(env!("CARGO_BIN_EXE_tree-demo"));
    command.env("ACTOR_REGISTRAR", registrar);
    command
}

/// Starts `wire-demo serve` and returns it with the address it printed.
async fn start_server(listen: &Addr) -> (Child, Addr) {
    let mut child = Command::new(DEMO)
        .args(["serve", "--listen", &listen.to_string(), "--once"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = within("the listening line", lines.next_line())
        .await
        .unwrap()
        .expect("server exited before listening");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, url.parse().unwrap())
}

#[tokio::test]
async fn the_demo_runs_end_to_end() {
    let out = within("the demo", Command::new(DEMO).kill_on_drop(true).output())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#"{"return": 3, "cid": "c1"}"#), "{stdout}");
    assert!(stdout.contains("add(a=1, b=2) returned 3"), "{stdout}");
    assert!(stdout.contains(r#""type_str": "NameError""#), "{stdout}");
    assert!(stdout.contains("child exited (exit status: 0)"), "{stdout}");
}

#[tokio::test]
async fn handshake_and_call_frames_across_processes_on_tcp_and_unix() {
    let dir = tempfile::tempdir().unwrap();
    for listen in [
        Addr::tcp("127.0.0.1", 0),
        Addr::unix(dir.path().join("peer.sock")),
    ] {
        let (mut child, addr) = start_server(&listen).await;
        let me = Uid::new("test-client");
        let mut channel = within(
            "the handshake",
            Channel::connect(&addr, &me, &ChannelConfig::default()),
        )
        .await
        .unwrap();
        assert_eq!(channel.peer().name, "wire-demo-child");
        assert_eq!(channel.peer().uuid.len(), 36);

        #[derive(serde::Serialize)]
        struct Args {
            a: i64,
            b: i64,
        }
        // Several calls in flight at once, answered by cid.
        for (i, (a, b)) in [(1, 2), (-5, 3), (i64::MAX - 1, 1)].into_iter().enumerate() {
            let cmd = Msg::from(Cmd {
                ns: "demo".into(),
                func: "add".into(),
                kwargs: Payload::encode(&Args { a, b }).unwrap(),
                caller: me.clone().into(),
                cid: format!("c{i}").into(),
                trace: None,
            });
            channel.send(&cmd).await.unwrap();
        }
        for (i, expected) in [3, -2, i64::MAX].into_iter().enumerate() {
            let cid = format!("c{i}");
            let functype = within("functype", channel.recv()).await.unwrap().unwrap();
            assert_eq!(
                functype,
                Msg::FuncType {
                    cid: cid.clone().into(),
                    kind: CallKind::AsyncFunc
                }
            );
            let ret = within("return", channel.recv()).await.unwrap().unwrap();
            let Msg::Return { cid: got, value } = ret else {
                panic!("expected a return, got {ret:?}");
            };
            assert_eq!(got, cid);
            assert_eq!(value.decode::<i64>().unwrap(), expected);
        }

        // Wrong argument types: an error reply, and the peer keeps serving.
        let bad = Msg::from(Cmd {
            ns: "demo".into(),
            func: "add".into(),
            kwargs: Payload::encode(&std::collections::BTreeMap::from([("a", "x")])).unwrap(),
            caller: me.clone().into(),
            cid: "bad".into(),
            trace: None,
        });
        channel.send(&bad).await.unwrap();
        let reply = within("the error", channel.recv()).await.unwrap().unwrap();
        let Msg::Error { cid, error } = reply else {
            panic!("expected an error, got {reply:?}");
        };
        assert_eq!(
            (cid.as_deref(), error.type_str.as_str()),
            (Some("bad"), "TypeError")
        );

        // The sentinel: the peer answers with its own, closes, and (with --once) exits.
        let (sender, mut reader) = channel.into_split();
        within("close", sender.close()).await.unwrap();
        assert_eq!(
            within("sentinel", reader.recv()).await.unwrap(),
            Some(Msg::Sentinel)
        );
        assert_eq!(within("eof", reader.recv()).await.unwrap(), None);
        let status = within("the peer to exit", child.wait()).await.unwrap();
        assert!(status.success(), "{status}");
    }
}

#[tokio::test]
async fn the_tree_demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = stdout_of_success("the tree demo", &mut tree_demo(&dir)).await;
    assert!(
        stdout.contains("0..999 each exactly once: true"),
        "{stdout}"
    );
    assert!(
        stdout.contains("remote ValueError raised in actor aggregator"),
        "{stdout}"
    );
    assert!(stdout.contains("0 tasks still running"), "{stdout}");
    assert!(stdout.contains("the whole tree has exited"), "{stdout}");
}

#[tokio::test]
async fn the_tree_demo_holds_its_tree_at_work_until_a_line_arrives() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let registrar: Addr = format!("unix://{}", dir.path().join("registrar.sock").display())
        .parse()
        .unwrap();
    let mut demo = tree_demo(&dir)
        .arg("--hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut before = Vec::new();
    loop {
        let line = within("the HOLDING line", lines.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the demo ended without holding: {before:?}"));
        if line == "HOLDING" {
            break;
        }
        before.push(line);
    }
    // Held: the aggregator is inside its `aggregate` call, with both workers alive, and stays
    // so (unheld, the whole merge takes a few ms: the half second of reports covers it).
    let registry = within("the registrar", actor::Registry::connect(&registrar))
        .await
        .unwrap();
    let aggregator = within("the lookup", registry.query_actor("aggregator"))
        .await
        .unwrap()
        .expect("the aggregator is registered");
    let portal = within("the connection", actor::connect(&aggregator))
        .await
        .unwrap();
    let watched = std::time::Instant::now();
    while watched.elapsed() < std::time::Duration::from_millis(500) {
        let report = within("the report", portal.report()).await.unwrap();
        let mut children: Vec<&str> = report.children.iter().map(|c| c.name.as_str()).collect();
        children.sort_unstable();
        assert_eq!(children, ["worker-1", "worker-2"], "{report:?}");
        assert!(
            report
                .calls
                .iter()
                .any(|call| call.ns == "tree" && call.func == "aggregate"),
            "{report:?}"
        );
    }
    // A line goes on: the run ends as it does without --hold.
    let mut stdin = demo.stdin.take().unwrap();
    stdin.write_all(b"\n").await.unwrap();
    let mut after = Vec::new();
    while let Some(line) = within("the rest of the run", lines.next_line())
        .await
        .unwrap()
    {
        after.push(line);
    }
    let after = after.join("\n");
    assert!(after.contains("0..999 each exactly once: true"), "{after}");
    assert!(after.contains("the whole tree has exited"), "{after}");
    assert!(within("the exit", demo.wait()).await.unwrap().success());
}

#[tokio::test]
async fn child_log_lines_reach_the_roots_stderr_prefixed_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = within(
        "the tree demo",
        tree_demo(&dir)
            // The level set on the root reaches every child.
            .env("ACTOR_LOG", "actor=info")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for child in ["aggregator", "worker-1", "worker-2"] {
        let prefix = format!("[{child}] ");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains("actor serving")),
            "no log line from {child}:\n{stderr}"
        );
    }
}
