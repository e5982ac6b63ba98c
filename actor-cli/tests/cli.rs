//! The `actor` command against real trees: each test is a root actor with its own registrar
//! (`#[actor::test]`) that starts children in real processes, then runs the `actor` binary
//! against that registrar and checks what it prints and how it exits.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../examples/tests/common/tractor.rs"]
mod tractor;

use std::{process::Stdio, time::Duration};

use actor::Context;
use futures::{Stream, StreamExt};
use tokio::{io::AsyncWriteExt, process::Command};

const ACTOR: &str = env!("CARGO_BIN_EXE_actor");
const WAIT: Duration = Duration::from_secs(20);

/// `a + b`.
#[actor::remote(ns = "cli")]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// `0..n`.
#[actor::remote(ns = "cli")]
fn count(n: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(0..n)
}

/// Echoes each message in upper case; returns how many.
#[actor::remote(ns = "cli", started = String)]
async fn shout(ctx: Context) -> actor::Result<u64> {
    ctx.started("ready".to_owned()).await?;
    let mut stream = ctx.open_stream::<String>().await?;
    let mut n = 0;
    while let Some(item) = stream.next().await {
        stream.send(item?.to_uppercase()).await?;
        n += 1;
    }
    Ok(n)
}

/// A tick every 10 ms, forever.
#[actor::remote(ns = "cli")]
fn forever() -> impl Stream<Item = u64> {
    futures::stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((n, n + 1))
    })
}

/// Fails with a `ValueError`.
#[actor::remote(ns = "cli")]
async fn fail(msg: String) -> actor::Result<()> {
    Err(actor::Error::raise("ValueError", msg))
}

/// Never returns until cancelled.
#[actor::remote(ns = "cli")]
async fn sleep_forever() {
    std::future::pending::<()>().await
}

/// Starts a child `leaf` and keeps it until the context's stream closes.
#[actor::remote(ns = "cli", started = u32)]
async fn hold_leaf(ctx: Context) -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let leaf = nursery.start_actor("leaf").enable("cli").await?;
    let pid = leaf.report().await?.pid;
    ctx.started(pid).await?;
    let mut stream = ctx.open_stream::<()>().await?;
    while stream.next().await.is_some() {}
    nursery.close().await
}

/// This test's registrar.
fn registrar() -> String {
    actor::Actor::current()
        .and_then(|me| me.registrar())
        .expect("a test root has a registrar")
        .to_string()
}

/// Runs `actor ARGS` against this test's registrar: (exit code, stdout, stderr).
async fn actor(args: &[&str]) -> (i32, String, String) {
    actor_with_input(args, None).await
}

async fn actor_with_input(args: &[&str], input: Option<&str>) -> (i32, String, String) {
    let registrar = registrar();
    let mut child = Command::new(ACTOR)
        .arg("--registrar")
        .arg(&registrar)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("actor {args:?} did not finish within {WAIT:?}"))
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[actor::test]
async fn ls_and_tree_show_the_running_tree_with_its_calls() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let worker = nursery.start_actor("worker").enable("cli").await?;
    let (hold, leaf_pid): (_, u32) = worker.open_context(hold_leaf {}).await?;
    let worker_pid = worker.report().await?.pid;
    // A call that runs until cancelled, for the tree to show.
    let sleeper = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run(sleep_forever {}).await }
    });
    // Wait until the worker reports it (an event, bounded).
    let began = std::time::Instant::now();
    while !worker
        .report()
        .await?
        .calls
        .iter()
        .any(|c| c.func == "sleep_forever")
    {
        assert!(began.elapsed() < WAIT, "the sleeping call never showed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (code, out, err) = actor(&["ls"]).await;
    assert_eq!(code, 0, "{err}");
    for (name, pid) in [("worker", worker_pid), ("leaf", leaf_pid)] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.contains(&format!(" {pid} "))),
            "ls lacks {name} with pid {pid}:\n{out}"
        );
    }

    let (code, out, err) = actor(&["--json", "ls"]).await;
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pids: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["pid"].as_u64())
        .collect();
    for pid in [std::process::id(), worker_pid, leaf_pid] {
        assert!(pids.contains(&u64::from(pid)), "{pid} not in {out}");
    }

    let (code, out, err) = actor(&["tree"]).await;
    assert_eq!(code, 0, "{err}");
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the tree:\n{out}"))
    };
    let (root, worker_line, leaf_line) = (
        at(&format!("pid {}", std::process::id())),
        at("worker ["),
        at("leaf ["),
    );
    assert!(root < worker_line && worker_line < leaf_line, "{out}");
    assert!(lines[worker_line].starts_with("└── worker"), "{out}");
    // The leaf is the worker's child: one level deeper.
    assert!(lines[leaf_line].starts_with("    └── leaf"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("call cli.sleep_forever") && l.contains("cid ")),
        "{out}"
    );

    sleeper.abort();
    drop(hold);
    nursery.cancel().await;
    Ok(())
}

#[actor::test]
async fn call_prints_results_streams_and_contexts_as_json() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    nursery.start_actor("calc").enable("cli").await?;

    let (code, out, err) = actor(&["call", "calc", "cli", "add", "a=2", "b=40"]).await;
    assert_eq!((code, out.as_str()), (0, "42\n"), "{err}");

    let (code, out, err) = actor(&["call", "--stream", "calc", "cli", "count", "n=3"]).await;
    assert_eq!((code, out.as_str()), (0, "0\n1\n2\n"), "{err}");

    let (code, out, err) = actor_with_input(
        &["call", "--context", "calc", "cli", "shout"],
        Some("hi\n\"there\"\n"),
    )
    .await;
    assert_eq!(
        (code, out.as_str()),
        (0, "\"ready\"\n\"HI\"\n\"THERE\"\n2\n"),
        "{err}"
    );

    // Errors say what failed, where, and what to do.
    let (code, _, err) = actor(&["call", "calc", "other", "add"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "namespace `other` is not enabled on actor `calc` (enabled: cli); enable it with \
             `.enable(\"other\")`"
        ),
        "{err}"
    );
    let (code, _, err) = actor(&["call", "calc", "cli", "nosuch"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("actor `calc` has no function `cli.nosuch` (functions in `cli`: add, count,"),
        "{err}"
    );

    let (code, _, err) = actor(&["call", "calc", "cli", "fail", "msg=no way"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("ValueError") && err.contains("no way") && err.contains("cli.fail on calc"),
        "{err}"
    );
    nursery.cancel().await;
    Ok(())
}

#[actor::test]
async fn cancel_ends_one_call_or_the_whole_actor() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let victim = nursery.start_actor("victim").enable("cli").await?;
    let sleeper = tokio::spawn({
        let victim = victim.clone();
        async move { victim.run(sleep_forever {}).await }
    });
    let began = std::time::Instant::now();
    let cid = loop {
        let calls = victim.report().await?.calls;
        if let Some(call) = calls.iter().find(|c| c.func == "sleep_forever") {
            break call.cid.clone();
        }
        assert!(began.elapsed() < WAIT, "the sleeping call never showed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (code, out, err) = actor(&["cancel", "victim", "--cid", &cid]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("cancelled 1 call(s)"), "{out}");
    let ended = tokio::time::timeout(WAIT, sleeper).await.unwrap().unwrap();
    assert!(ended.is_err(), "the cancelled call must fail: {ended:?}");
    // A stream cancelled by someone else fails its consumer: it must not look finished.
    let mut ticks = victim.open_stream_from(forever {}).await?;
    let first = tokio::time::timeout(WAIT, ticks.next()).await.unwrap();
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    let stream_cid = victim
        .report()
        .await?
        .calls
        .into_iter()
        .find(|c| c.func == "forever")
        .map(|c| c.cid)
        .expect("the stream runs");
    let (code, _, err) = actor(&["cancel", "victim", "--cid", &stream_cid]).await;
    assert_eq!(code, 0, "{err}");
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match ticks.next().await {
                Some(Ok(_)) => continue,
                other => break other,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(ended, Some(Err(actor::Error::ContextCancelled { .. }))),
        "a stream cut off by another must end in ContextCancelled: {ended:?}"
    );
    // A cid that runs nowhere is an error, exit 1.
    let (code, _, err) = actor(&["cancel", "victim", "--cid", &cid]).await;
    assert_eq!(code, 1, "{err}");

    let (code, out, err) = actor(&["cancel", "victim"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("it is stopping"), "{out}");
    // It stops: its connection ends, and calls on it fail.
    let began = std::time::Instant::now();
    while victim.report().await.is_ok() {
        assert!(began.elapsed() < WAIT, "the cancelled actor still answers");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Its end was not the nursery's doing: the nursery reports it.
    let _ = nursery.close().await;
    Ok(())
}

#[actor::test]
async fn unknown_names_and_missing_registrars_are_clear_errors() -> actor::Result<()> {
    let (code, _, err) = actor(&["call", "nobody", "cli", "add"]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no actor called \"nobody\""), "{err}");

    let out = Command::new(ACTOR)
        .args(["--registrar", "tcp://127.0.0.1:1", "ls"])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no registrar answers at tcp://127.0.0.1:1"),
        "{err}"
    );

    let out = Command::new(ACTOR)
        .args(["frobnicate"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[actor::test]
async fn a_python_tractor_actor_is_listed_and_callable() -> actor::Result<()> {
    let python = tractor::tractor_python(ACTOR);
    let module = tractor::workspace().join("tests/interop/pyfuncs.py");
    let nursery = actor::open_nursery().await?;
    let child = nursery
        .start_actor("py-child")
        .enable("pyfuncs")
        .program(
            actor::Program::tractor(python).module_path("pyfuncs", module.display().to_string()),
        )
        .await?;
    let uuid = child.peer().uuid.clone();

    let (code, out, err) = actor(&["ls"]).await;
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("py-child"))
        .unwrap_or_else(|| panic!("no py-child in:\n{out}"));
    // The registrar knows it; it does not answer the runtime's introspection.
    assert!(row.contains(&uuid[..8]) && row.ends_with(" -"), "{row}");

    let (code, out, err) = actor(&["tree"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("└── py-child")
            && l.contains("does not report: not an actor of this runtime")),
        "the Python child under the root:\n{out}"
    );

    let (code, out, err) = actor(&["call", "py-child", "pyfuncs", "add", "a=40", "b=2"]).await;
    assert_eq!((code, out.as_str()), (0, "42\n"), "{err}");
    nursery.close().await
}

#[actor::test]
async fn top_refreshes_rates_running_calls_and_memory() -> actor::Result<()> {
    let nursery = actor::open_nursery().await?;
    let busy = nursery.start_actor("busy").enable("cli").await?;
    let pid = busy.report().await?.pid;
    // Calls made all along: the rate shows them (the tool's own report calls do not count).
    let traffic = {
        let busy = busy.clone();
        tokio::spawn(async move {
            loop {
                if busy.run(add { a: 1, b: 2 }).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let (code, out, err) =
        actor(&["--json", "top", "--iterations", "2", "--interval-ms", "100"]).await;
    traffic.abort();
    assert_eq!(code, 0, "{err}");
    let rounds: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rounds.len(), 2, "{out}");
    let row = |round: &serde_json::Value| {
        round
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "busy")
            .cloned()
            .unwrap_or_else(|| panic!("no busy in {round}"))
    };
    let (first, second) = (row(&rounds[0]), row(&rounds[1]));
    assert_eq!(first["pid"], u64::from(pid));
    assert!(first["rss_kib"].as_u64().unwrap() > 0, "{first}");
    // A rate needs two rounds: the second has one.
    assert!(first["calls_per_sec"].is_null(), "{first}");
    assert!(second["calls_per_sec"].as_f64().unwrap() > 0.0, "{second}");
    nursery.cancel().await;
    Ok(())
}
