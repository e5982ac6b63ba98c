//! Where a root actor's program runs: `#[actor::main]` and `#[actor::test]` make a program
//! that can be a task (`Send + 'static`, with a `Send` output) a task of its own, whose calls
//! are answered without the extra I/O-driver poll tokio makes before it resumes a woken
//! `block_on` future; any other program runs in place, as before. Either way it is the root,
//! opens nurseries and calls its children.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::rc::Rc;

#[actor::remote(ns = "placed")]
async fn twice(x: u64) -> u64 {
    x * 2
}

/// Starts a child and calls it: what a root's program does.
async fn call_a_child() -> u64 {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("doubler")
        .enable("placed")
        .await
        .unwrap();
    let answer = child.run(twice { x: 21 }).await.unwrap();
    nursery.close().await.unwrap();
    answer
}

#[actor::test]
async fn a_program_that_can_be_a_task_runs_as_one() {
    assert!(
        tokio::task::try_id().is_some(),
        "a Send program should run as a task"
    );
    assert_eq!(call_a_child().await, 42);
}

#[actor::test]
async fn a_program_holding_an_rc_across_an_await_runs_in_place() {
    let held = Rc::new(21);
    assert_eq!(call_a_child().await, 42);
    assert!(
        tokio::task::try_id().is_none(),
        "a program that is not Send cannot be a task"
    );
    assert_eq!(*held, 21);
}

#[actor::test]
async fn a_program_whose_output_is_not_send_runs_in_place() -> Result<(), Box<dyn std::error::Error>>
{
    assert!(tokio::task::try_id().is_none());
    assert_eq!(call_a_child().await, 42);
    Ok(())
}

#[actor::test]
#[should_panic(expected = "the program's own panic")]
async fn a_panic_in_a_program_run_as_a_task_is_the_tests() {
    assert!(tokio::task::try_id().is_some());
    call_a_child().await;
    panic!("the program's own panic");
}
