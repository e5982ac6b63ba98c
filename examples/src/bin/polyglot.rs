//! A polyglot actor tree: a Rust root with a Rust child and a Python tractor 0.1.0a5 child.
//!
//! ```text
//! bash ../shared/tools/install-tractor-a5.sh target/tractor-a5-venv   # once
//! cargo run --release -p examples --bin polyglot
//! ```
//!
//! `ACTOR_TRACTOR_PYTHON` names another interpreter with tractor 0.1.0a5 installed.

use std::path::PathBuf;

use actor::{Program, Value};
use futures::TryStreamExt;

fn python() -> PathBuf {
    std::env::var_os("ACTOR_TRACTOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tractor-a5-venv/bin/python")
        })
}

#[actor::main]
async fn main() -> actor::Result<()> {
    let python = python();
    if !python.is_file() {
        return Err(actor::Error::Usage(format!(
            "no tractor 0.1.0a5 interpreter at {} (run ../shared/tools/install-tractor-a5.sh \
             target/tractor-a5-venv, or set ACTOR_TRACTOR_PYTHON)",
            python.display()
        )));
    }
    let module = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/pyfuncs.py");
    let nursery = actor::open_nursery().await?;
    let rust = nursery
        .start_actor("rust-worker")
        .enable(examples::demo::NS)
        .await?;
    let py = nursery
        .start_actor("py-worker")
        .enable("pyfuncs")
        .program(Program::tractor(python).module_path("pyfuncs", module.display().to_string()))
        .await?;
    println!("root (Rust, pid {})", std::process::id());
    println!("├── rust-worker (Rust)");
    println!("└── py-worker   (Python tractor 0.1.0a5)");

    let from_rust = rust.run(examples::demo::add { a: 1, b: 2 }).await?;
    let args = Value::Map(vec![("a".into(), 20.into()), ("b".into(), 22.into())]);
    let from_python = py.run_from_ns("pyfuncs", "add", args).await?;
    println!("rust-worker: add(1, 2) = {from_rust}");
    println!("py-worker:   add(20, 22) = {from_python}");

    let counted: Vec<u64> = rust
        .open_stream_from(examples::demo::count { n: 3 })
        .await?
        .try_collect()
        .await?;
    let n = Value::Map(vec![("n".into(), 3.into())]);
    let py_counted: Vec<i64> = py
        .open_stream_from_ns::<i64>("pyfuncs", "count", actor::Payload::from_value(&n))
        .await?
        .try_collect()
        .await?;
    println!("streams: Rust {counted:?}, Python {py_counted:?}");

    match py
        .run_from_ns(
            "pyfuncs",
            "fail",
            Value::Map(vec![("msg".into(), "from Python".into())]),
        )
        .await
    {
        Err(actor::Error::Remote(e)) => println!(
            "a Python exception arrives as RemoteActorError {}: {}",
            e.type_str,
            e.tb_str.lines().last().unwrap_or_default()
        ),
        other => println!("unexpected: {other:?}"),
    }
    nursery.close().await?;
    println!("both children exited");
    Ok(())
}
