//! A nursery can start a different program as a child actor: here the `tree-demo` binary
//! (its `main` is an `#[actor::main]`), which serves its `tree` namespace when started so.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actor::{Program, Value};

#[actor::test]
async fn another_program_runs_as_a_child_actor() {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("demo-as-child")
        .enable("tree")
        .program(Program::path(env!("CARGO_BIN_EXE_tree-demo")))
        .await
        .unwrap();
    let squared = child
        .run_from_ns("tree", "square", Value::Map(vec![("x".into(), 9.into())]))
        .await
        .unwrap();
    assert_eq!(squared.as_i64(), Some(81));
    nursery.close().await.unwrap();
}
