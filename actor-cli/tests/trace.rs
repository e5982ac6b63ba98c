//! `actor trace DIR` draws what a real tree recorded: a root calls child `a`, which calls its
//! child `b` and a function of its own that fails. The tree runs with `ACTOR_TRACE_DIR` (the
//! runtime's `otel` feature); `actor trace` must show one trace across the three processes,
//! each call under its caller, with the actor that served it and the failure marked.
//!
//! The tree is an `#[ignore]`d test that [`trace_draws_one_request_across_three_processes`]
//! re-runs with the variable set (the recording layer is installed as each process starts).

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tracing::Instrument;

const ACTOR: &str = env!("CARGO_BIN_EXE_actor");

mod traced {
    /// Calls `b` (its child), then `refuse` here; returns `b`'s answer plus one.
    #[actor::remote(ns = "traced")]
    pub(crate) async fn relay() -> actor::Result<u64> {
        let nursery = actor::open_nursery().await?;
        let b = nursery.start_actor("b").enable("traced").await?;
        let answer = b.run(leaf {}).await?;
        let refused = b.run(refuse {}).await;
        nursery.close().await?;
        assert!(refused.is_err());
        Ok(answer + 1)
    }

    /// 41.
    #[actor::remote(ns = "traced")]
    pub(crate) async fn leaf() -> u64 {
        41
    }

    /// Always a `ValueError`.
    #[actor::remote(ns = "traced")]
    pub(crate) async fn refuse() -> actor::Result<()> {
        Err(actor::Error::raise("ValueError", "not today"))
    }
}

use traced::*;

#[actor::test]
#[ignore = "run by trace_draws_one_request_across_three_processes, with ACTOR_TRACE_DIR set"]
async fn traced_tree() -> actor::Result<()> {
    assert!(std::env::var_os(actor::TRACE_DIR_ENV).is_some());
    let nursery = actor::open_nursery().await?;
    let a = nursery.start_actor("a").enable("traced").await?;
    let answer = a
        .run(relay {})
        .instrument(tracing::info_span!("cli-request"))
        .await?;
    assert_eq!(answer, 42);
    nursery.close().await?;
    Ok(())
}

/// Runs `program args` to its end within a minute: (exit code, stdout, stderr).
fn run(program: &str, args: &[&str], env: &[(&str, &std::path::Path)]) -> (i32, String, String) {
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Bounded polling of the exit: a std child has no timed wait.
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn trace_draws_one_request_across_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    let (code, _, err) = run(
        me.to_str().unwrap(),
        &["--exact", "traced_tree", "--ignored", "--nocapture"],
        &[(actor::TRACE_DIR_ENV, dir.path())],
    );
    assert_eq!(code, 0, "the traced tree failed: {err}");
    let dir_arg = dir.path().to_str().unwrap();

    let (code, out, err) = run(ACTOR, &["trace", dir_arg], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // One trace, three processes: the root's span on top, `a`'s call under it, `b`'s two
    // calls under `a`'s, the failed one marked.
    assert!(
        lines[0].starts_with("trace ") && lines[0].contains("3 processes"),
        "{out}"
    );
    let position = |needle: &str| {
        lines
            .iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{out}"))
    };
    let root = position("cli-request  [traced_tree pid ");
    let relay = position("actor.call traced.relay  [a pid ");
    let leaf = position("actor.call traced.leaf  [b pid ");
    let refuse = position("actor.call traced.refuse  [b pid ");
    assert!(root < relay && relay < leaf && leaf < refuse, "{out}");
    assert!(lines[relay].starts_with("└── "), "{out}");
    assert!(lines[leaf].starts_with("    ├── "), "{out}");
    assert!(lines[refuse].starts_with("    └── "), "{out}");
    assert!(lines[refuse].ends_with("ERROR ValueError"), "{out}");
    assert!(!lines[leaf].contains("ERROR"), "{out}");

    // --json: the same tree, nested.
    let (code, out, err) = run(ACTOR, &["--json", "trace", dir_arg], &[]);
    assert_eq!(code, 0, "{err}");
    let traces: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(traces.len(), 1, "{out}");
    let top = &traces[0]["spans"][0];
    assert_eq!(top["name"], "cli-request", "{out}");
    let in_a = &top["children"][0];
    assert_eq!(in_a["service"], "a", "{out}");
    assert_eq!(in_a["attributes"]["func"], "relay", "{out}");
    let in_b: Vec<&str> = in_a["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|span| span["attributes"]["func"].as_str().unwrap())
        .collect();
    assert_eq!(in_b, ["leaf", "refuse"], "{out}");

    // Span ids that loop (files from elsewhere, or from several runs): each span is drawn
    // once, and the command ends.
    let looping = tempfile::tempdir().unwrap();
    let span = |id: &str, parent: &str, name: &str| {
        serde_json::json!({
            "name": name, "trace_id": "t1", "span_id": id, "parent_span_id": parent,
            "pid": 1, "service": "x", "attributes": {},
        })
        .to_string()
    };
    std::fs::write(
        looping.path().join("1.jsonl"),
        [
            span("01", "", "root"),
            span("02", "01", "child"),
            span("01", "02", "again"),
        ]
        .join("\n"),
    )
    .unwrap();
    let (code, out, err) = run(ACTOR, &["trace", looping.path().to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("child").count(), 1, "{out}");

    // Nothing recorded: a clear error, exit 4.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run(ACTOR, &["trace", empty.path().to_str().unwrap()], &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("ACTOR_TRACE_DIR"), "{err}");
}
