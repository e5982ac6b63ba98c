//! Whole actor trees in real processes, checked from outside through the process table: no
//! descendant outlives the root, whatever way the root ends.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{process::Stdio, sync::Mutex, time::Duration};

use actor_tests::{process_alive as alive, within};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How the tree's root behaves once its tree is up (read by `tree_root_entry`): `wait`, `drop`
/// or `respawn`, its program a task of its own as `#[actor::test]` places it;
/// `wait-in-place`, its program polled by the runtime's `block_on` as `run_root` places it.
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
    let path = concat!(module_path!(), "::tree_root_entry");
    if mode == "wait-in-place" {
        actor::__private::run_test(path, move || tree_root(mode, false));
    } else {
        // Placed as `#[actor::test]` places a program that can be a task.
        actor::__private::run_test_program(path, move || {
            actor::__place_program!(tree_root(mode, true))
        });
    }
}

/// Never returns (until cancelled).
#[actor::remote(ns = "tree")]
async fn forever() {
    std::future::pending::<()>().await;
}

/// The tree root's program: grows the tree, prints its pids, then behaves as `mode` says.
async fn tree_root(mode: String, as_task: bool) {
    assert_eq!(
        tokio::task::try_id().is_some(),
        as_task,
        "the root's program should run {}",
        if as_task { "as a task" } else { "in place" }
    );
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("level-top")
        .enable("tree")
        .await
        .unwrap();
    let pids = child.run(grow { depth: 1 }).await.unwrap();
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("PIDS {}", list.join(" "));
    match mode.as_str() {
        "drop" => {
            drop(nursery);
            println!("DROPPED");
        }
        "respawn" => {
            // A supervisor's loop: its child's call ends, so it starts another. Once the
            // root is interrupted, the program must run no further while its nurseries are
            // torn down.
            let mut child = child;
            loop {
                let ended = child.run(forever {}).await;
                println!("RESTARTING after {ended:?}");
                child = match nursery.start_actor("level-top").enable("tree").await {
                    Ok(child) => child,
                    Err(e) => {
                        println!("RESTARTING failed: {e}");
                        break;
                    }
                };
            }
        }
        _ => {}
    }
    std::future::pending::<()>().await;
}

/// Starts a tree root in `mode`; returns it, its descendants' pids (child, grandchild), and
/// the lines it prints from then on until it exits.
async fn start_tree(
    mode: &str,
) -> (
    tokio::process::Child,
    Vec<u32>,
    tokio::task::JoinHandle<Vec<String>>,
) {
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
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    assert_eq!(pids.len(), 2, "child and grandchild: {pids:?}");
    if mode != "drop" {
        for pid in &pids {
            assert!(alive(*pid), "{pid} should be running");
        }
    }
    (root, pids, rest)
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
    let (mut root, pids, _) = start_tree("wait").await;
    root.start_kill().unwrap();
    within("the root to die", root.wait()).await.unwrap();
    all_gone_within(&pids, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sigint_to_the_root_tears_the_tree_down_and_exits_with_the_interrupt() {
    sigint_tears_the_tree_down("wait").await;
}

#[tokio::test]
async fn sigint_to_a_root_whose_program_runs_in_place_tears_the_tree_down() {
    sigint_tears_the_tree_down("wait-in-place").await;
}

#[tokio::test]
async fn an_interrupted_roots_program_runs_no_further_while_its_tree_is_torn_down() {
    let printed = sigint_tears_the_tree_down("respawn").await;
    assert!(
        !printed.iter().any(|line| line.starts_with("RESTARTING")),
        "the program went on after the interrupt: {printed:?}"
    );
}

/// SIGINT to a tree root in `mode`: it exits with the interrupt, its descendants gone. What it
/// printed after its pids.
async fn sigint_tears_the_tree_down(mode: &str) -> Vec<String> {
    let (mut root, pids, rest) = start_tree(mode).await;
    actor_tests::signal(root.id().unwrap(), "-INT");
    let exit = within("the root to exit", root.wait()).await.unwrap();
    assert_eq!(exit.code(), Some(actor::INTERRUPTED_EXIT), "{exit}");
    all_gone_within(&pids, Duration::from_secs(1)).await;
    within("the root's output to end", rest).await.unwrap()
}

#[tokio::test]
async fn a_nursery_dropped_without_closing_takes_its_children_along() {
    let (mut root, pids, _) = start_tree("drop").await;
    all_gone_within(&pids, Duration::from_secs(1)).await;
    // The root itself lives on.
    assert!(root.try_wait().unwrap().is_none());
}
