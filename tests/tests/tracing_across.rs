//! One request across three processes is one trace: the root's span is the parent of the span
//! serving its call in child `a`, whose span is the parent of the span serving `a`'s call in
//! grandchild `b` (the `otel` feature, W3C trace context in `cmd`'s `trace` key). Each process
//! records its finished spans in `ACTOR_TRACE_DIR` (one JSON-lines file per process); the test
//! reads them all back.
//!
//! The tree test proper is `#[ignore]`d: [`one_call_is_one_trace_across_three_processes`]
//! re-runs this binary on it with `ACTOR_TRACE_DIR` set (the recording layer is installed when
//! each actor process starts).

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tracing::Instrument;

mod traced {
    /// Calls `b` (a child of this actor) and returns its answer plus one.
    #[actor::remote(ns = "traced")]
    pub(crate) async fn relay() -> actor::Result<u64> {
        let nursery = actor::open_nursery().await?;
        let b = nursery.start_actor("b").enable("traced").await?;
        let answer = b.run(leaf {}).await?;
        nursery.close().await?;
        Ok(answer + 1)
    }

    /// 41.
    #[actor::remote(ns = "traced")]
    pub(crate) async fn leaf() -> u64 {
        41
    }
}

use traced::*;

#[actor::test]
#[ignore = "run by one_call_is_one_trace_across_three_processes, with ACTOR_TRACE_DIR set"]
async fn traced_tree() -> actor::Result<()> {
    assert!(
        std::env::var_os(actor::TRACE_DIR_ENV).is_some(),
        "run this through one_call_is_one_trace_across_three_processes"
    );
    let nursery = actor::open_nursery().await?;
    let a = nursery.start_actor("a").enable("traced").await?;
    let answer = a
        .run(relay {})
        .instrument(tracing::info_span!("client-request"))
        .await?;
    assert_eq!(answer, 42);
    nursery.close().await?;
    Ok(())
}

#[test]
fn one_call_is_one_trace_across_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    actor_tests::run_ignored_test_with_env(
        "traced_tree",
        &[(actor::TRACE_DIR_ENV, dir.path().as_os_str())],
        Duration::from_secs(60),
    );
    let mut spans = Vec::new();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for line in text.lines() {
            spans.push(serde_json::from_str::<serde_json::Value>(line).unwrap());
        }
    }
    let find = |name: &str, func: Option<&str>| {
        spans
            .iter()
            .find(|s| {
                s["name"] == name
                    && func.is_none_or(|f| s["attributes"]["func"].as_str() == Some(f))
            })
            .unwrap_or_else(|| panic!("no span {name} {func:?} among {spans:#?}"))
            .clone()
    };
    let root = find("client-request", None);
    let in_a = find("actor.call", Some("relay"));
    let in_b = find("actor.call", Some("leaf"));
    // Three processes...
    let pids = [&root, &in_a, &in_b].map(|s| s["pid"].as_u64().unwrap());
    assert!(
        pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2],
        "{pids:?}"
    );
    // ...one trace, each serving span the child of its caller's span.
    assert_eq!(in_a["trace_id"], root["trace_id"], "{in_a} vs {root}");
    assert_eq!(in_b["trace_id"], root["trace_id"], "{in_b} vs {root}");
    assert_eq!(in_a["parent_span_id"], root["span_id"], "{in_a} vs {root}");
    assert_eq!(in_b["parent_span_id"], in_a["span_id"], "{in_b} vs {in_a}");
    // The serving spans name their actor, namespace, function and call id.
    for (span, actor) in [(&in_a, "a["), (&in_b, "b[")] {
        let attributes = &span["attributes"];
        assert!(
            attributes["actor"].as_str().unwrap().starts_with(actor),
            "{span}"
        );
        assert_eq!(attributes["ns"], "traced", "{span}");
        assert!(!attributes["cid"].as_str().unwrap().is_empty(), "{span}");
    }
}
