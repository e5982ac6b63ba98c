//! Whole actor trees in real processes, checked from outside through the process table: no
//! descendant outlives the root, whatever way the root ends.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{process::Stdio, sync::Mutex, time::Duration};

use actor_tests::{process_alive as alive, within};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How the tree's root behaves once its tree is up (read by `tree_root_entry`).
const ROOT_MODE_ENV: &str = "ACTOR_TEST_TREE_ROOT";

/// Nurseries kept alive by the actors that opened them inside a call.
static KEEP: Mutex<Vec<actor::Nursery>> = Mutex::new(Vec::new());

/// Starts a child that grows `depth - 1` more levels; returns this actor's pid and every
/// descendant's.
#[actor::remote(ns = "tree")]
async fn grow(depth: u32) -> actor::Result<Vec<u32>> {
    let mut pids = vec![std::process::id()];
    if depth > 0 {
        let nursery = actor::open_nursery().await?;
        let child = nursery
            .start_actor(format!("level{depth}"))
            .enable("tree")
            .await?;
        pids.extend(child.run(grow { depth: depth - 1 }).await?);
        KEEP.lock().unwrap().push(nursery);
    }
    Ok(pids)
}

/// The root of the tree under test, run in its own process by the tests below (and as the
/// host of the tree's children, which re-launch this test binary).
#[test]
fn tree_root_entry() {
    let mode = std::env::var(ROOT_MODE_ENV).unwrap_or_default();
    if mode.is_empty() {
        return;
    }
    actor::__private::run_test(
        concat!(module_path!(), "::tree_root_entry"),
        || async move {
            let nursery = actor::open_nursery().await.unwrap();
            let child = nursery
                .start_actor("level-top")
                .enable("tree")
                .await
                .unwrap();
            let pids = child.run(grow { depth: 1 }).await.unwrap();
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            println!("PIDS {}", list.join(" "));
            if mode == "drop" {
                drop(nursery);
                println!("DROPPED");
            }
            std::future::pending::<()>().await;
        },
    );
}

/// Starts a tree root in `mode`; returns it and its descendants' pids (child, grandchild).
async fn start_tree(mode: &str) -> (tokio::process::Child, Vec<u32>) {
    let mut root = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tree_root_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROOT_MODE_ENV, mode)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(root.stdout.take().unwrap()).lines();
    let pids = within("the tree to grow", async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, pids)) = line.split_once("PIDS ") {
                return pids
                    .split(' ')
                    .map(|p| p.parse::<u32>().unwrap())
                    .collect::<Vec<_>>();
            }
        }
        panic!("the root exited before its tree grew");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert_eq!(pids.len(), 2, "child and grandchild: {pids:?}");
    if mode != "drop" {
        for pid in &pids {
            assert!(alive(*pid), "{pid} should be running");
        }
    }
    (root, pids)
}

/// Waits (at most `bound`) until none of `pids` is alive.
async fn all_gone_within(pids: &[u32], bound: Duration) {
    let started = std::time::Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "still running {:?} after the root ended: {left:?}",
            started.elapsed()
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn sigkill_of_the_root_leaves_no_descendant() {
    let (mut root, pids) = start_tree("wait").await;
    root.start_kill().unwrap();
    within("the root to die", root.wait()).await.unwrap();
    all_gone_within(&pids, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sigint_to_the_root_tears_the_tree_down_and_exits_with_the_interrupt() {
    let (mut root, pids) = start_tree("wait").await;
    actor_tests::signal(root.id().unwrap(), "-INT");
    let exit = within("the root to exit", root.wait()).await.unwrap();
    assert_eq!(exit.code(), Some(actor::INTERRUPTED_EXIT), "{exit}");
    all_gone_within(&pids, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_nursery_dropped_without_closing_takes_its_children_along() {
    let (mut root, pids) = start_tree("drop").await;
    all_gone_within(&pids, Duration::from_secs(1)).await;
    // The root itself lives on.
    assert!(root.try_wait().unwrap().is_none());
}
