//! A polyglot actor tree: a Rust root with a Rust child and a Python tractor 0.1.0a5 child.
//!
//! ```text
//! cargo run --release -p examples --bin polyglot
//! ```
//!
//! The Python child needs tractor 0.1.0a5: on first use the example installs it with the
//! project's `tools/install-tractor-a5.sh` (pinned versions, `python3` with `venv` needed) into
//! `target/tractor-a5-venv`, beside the example's binary. `ACTOR_TRACTOR_PYTHON` names another
//! interpreter with tractor 0.1.0a5 installed instead.

use std::path::{Path, PathBuf};

use actor::{Program, Value};
use futures::TryStreamExt;

/// The repository this example was built from: the installer and the Python module live there.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An interpreter with tractor 0.1.0a5: `ACTOR_TRACTOR_PYTHON`, or the project's venv in the
/// target directory (installed now if it is missing).
async fn python() -> actor::Result<PathBuf> {
    if let Some(python) = std::env::var_os("ACTOR_TRACTOR_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let exe = std::env::current_exe()?;
    let target = exe.ancestors().nth(2).ok_or_else(|| {
        actor::Error::Usage(format!("no target directory above {}", exe.display()))
    })?;
    let installer = repository().join("tools/install-tractor-a5.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&installer)
        .arg(target.join("tractor-a5-venv"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(|e| {
            actor::Error::Usage(format!("cannot run bash {}: {e}", installer.display()))
        })?;
    let printed = String::from_utf8_lossy(&out.stdout);
    match printed.lines().last().map(str::trim) {
        Some(python) if out.status.success() && !python.is_empty() => Ok(PathBuf::from(python)),
        _ => Err(actor::Error::Usage(format!(
            "the Python child needs tractor 0.1.0a5, and {} could not install it (see its \
             message above); or set ACTOR_TRACTOR_PYTHON to an interpreter that has it",
            installer.display()
        ))),
    }
}

#[actor::main]
async fn main() -> actor::Result<()> {
    let python = python().await?;
    if !python.is_file() {
        return Err(actor::Error::Usage(format!(
            "no Python interpreter at {} (ACTOR_TRACTOR_PYTHON)",
            python.display()
        )));
    }
    let module = repository().join("tests/interop/pyfuncs.py");
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
