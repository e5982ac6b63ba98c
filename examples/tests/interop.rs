//! Interoperability with the reference peer, Python tractor 0.1.0a5, in real processes.
//!
//! The reference peer is installed by the project's `tools/install-tractor-a5.sh` (pinned
//! versions) into `target/tractor-a5-venv` (kept between runs). If it cannot be installed,
//! these tests fail with the installer's message: they are never skipped silently.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/tractor.rs"]
mod tractor;

use std::time::Duration;

use common::{start_listening, stdout_of_success, within};
use tokio::process::Command;
use tractor::workspace;

const REGISTRAR: &str = env!("CARGO_BIN_EXE_registrar");
const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");

/// The golden frames the wire tests check (`actor-ipc/tests/data/vectors.json`) are exactly
/// what tractor 0.1.0a5's own transport sends today: their generator, run with the real
/// tractor, prints the committed file byte for byte.
#[tokio::test]
async fn the_golden_frames_are_what_tractor_sends() {
    let python = tractor::tractor_python(REGISTRAR);
    let data = workspace().join("actor-ipc/tests/data");
    let printed = stdout_of_success(
        "the golden-frame generator",
        Command::new(&python)
            .arg("-W")
            .arg("ignore")
            .arg(data.join("gen_vectors.py")),
    )
    .await;
    let committed = std::fs::read_to_string(data.join("vectors.json")).unwrap();
    assert!(
        printed == committed,
        "actor-ipc/tests/data/vectors.json differs from what gen_vectors.py prints with \
         tractor 0.1.0a5; regenerate it and review the diff:\n{python:?} -W ignore \
         actor-ipc/tests/data/gen_vectors.py > actor-ipc/tests/data/vectors.json"
    );
}

/// Starts the Rust `registrar` on a free loopback port: the process, its address, its port.
async fn tcp_registrar() -> (tokio::process::Child, actor::Addr, u16) {
    let listen = ["--listen".into(), "tcp://127.0.0.1:0".into()];
    let (child, mut addrs) = start_listening(REGISTRAR, &listen, 1).await;
    let addr = addrs.remove(0);
    let actor::Addr::Tcp { port, .. } = &addr else {
        panic!("the registrar listens on {addr}, not TCP")
    };
    let port = *port;
    (child, addr, port)
}

/// Python tractor finds a Rust actor through a Rust registrar and calls all three kinds of
/// its functions, abandons a stream (the Rust task must end), and cancels the actor.
#[tokio::test]
async fn python_calls_rust() {
    let python = tractor::tractor_python(REGISTRAR);
    let (_registrar, registrar, port) = tcp_registrar().await;
    let args = [
        "--name",
        "rust-daemon",
        "--listen",
        "tcp://127.0.0.1:0",
        "--registrar",
        &registrar.to_string(),
    ]
    .map(String::from);
    let (mut daemon, daemon_addrs) = start_listening(DAEMON, &args, 1).await;
    let actor::Addr::Tcp {
        port: daemon_port, ..
    } = &daemon_addrs[0]
    else {
        unreachable!()
    };
    let stdout = stdout_of_success(
        "the python side",
        Command::new(&python)
            .arg(workspace().join("tests/interop/python_calls_rust.py"))
            .arg(port.to_string())
            .arg("rust-daemon")
            .arg(daemon_port.to_string()),
    )
    .await;
    assert!(stdout.contains("ok   context result"), "{stdout}");
    assert!(
        stdout.contains("ok   a blocking function answers like an asyncfunc"),
        "{stdout}"
    );
    // Portal.cancel_actor() from Python stopped the Rust actor cleanly.
    let exit = within("the daemon to exit", daemon.wait()).await.unwrap();
    assert!(exit.success(), "{exit}");
}

/// A Rust actor with a secret refuses a real tractor 0.1.0a5 peer (which cannot authenticate)
/// with a clear log line, runs none of its calls (not even `self cancel`), and keeps serving.
#[tokio::test]
async fn python_without_the_secret_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncBufReadExt;
    let python = tractor::tractor_python(REGISTRAR);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a secret python does not know, 32+").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut daemon = Command::new(DAEMON)
        .args([
            "--name",
            "guarded",
            "--listen",
            "tcp://127.0.0.1:0",
            "--auth-file",
        ])
        .arg(&secret)
        .env("ACTOR_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(daemon.stdout.take().unwrap()).lines();
    let line = within("the daemon to listen", lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let addr: actor::Addr = line.strip_prefix("listening on ").unwrap().parse().unwrap();
    let actor::Addr::Tcp { port, .. } = &addr else {
        unreachable!()
    };
    let stdout = stdout_of_success(
        "the python side",
        Command::new(&python)
            .arg(workspace().join("tests/interop/python_refused.py"))
            .arg(port.to_string()),
    )
    .await;
    assert!(stdout.contains("ok   refused: call"), "{stdout}");
    assert!(stdout.contains("ok   refused: cancel"), "{stdout}");
    // Still serving (the cancel never ran), and it said why it refused.
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
    let mut stderr = tokio::io::BufReader::new(daemon.stderr.take().unwrap()).lines();
    within("the refusal's log line", async {
        loop {
            let line = stderr.next_line().await.unwrap().expect("stderr ended");
            if line.contains("did not authenticate") {
                return;
            }
        }
    })
    .await;
}

/// A Rust portal calls a Python tractor actor found by name through the Rust registrar:
/// results, Python exceptions, a stream, a context (tractor's duplicate `stop` handled), and a
/// Python task cancelled by dropping the call.
#[tokio::test]
async fn rust_calls_python() {
    use actor::{Payload, Value};
    use futures::{StreamExt, TryStreamExt};
    use tokio::io::{AsyncBufReadExt, BufReader};

    let python = tractor::tractor_python(REGISTRAR);
    let (_registrar, registrar, port) = tcp_registrar().await;
    let mut server = Command::new(&python)
        .arg(workspace().join("tests/interop/python_serves.py"))
        .arg(port.to_string())
        .arg("py-server")
        .current_dir(workspace().join("tests/interop"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let ready = within("the python actor", lines.next_line()).await.unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));

    // Found by name through the Rust registrar.
    let registry = actor::Registry::connect(&registrar).await.unwrap();
    let portal = within("find_actor", registry.find_actor("py-server"))
        .await
        .unwrap()
        .expect("the Python actor registered");
    let kwargs = |pairs: Vec<(&str, Value)>| {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    };

    let sum = portal
        .run_from_ns(
            "pyfuncs",
            "add",
            kwargs(vec![("a", 1.into()), ("b", 2.into())]),
        )
        .await
        .unwrap();
    assert_eq!(sum.as_i64(), Some(3));

    match portal
        .run_from_ns("pyfuncs", "fail", kwargs(vec![("msg", "kaboom".into())]))
        .await
    {
        Err(actor::Error::Remote(e)) => {
            assert_eq!(e.type_str, "ValueError");
            assert!(
                e.tb_str.contains("Traceback") && e.tb_str.contains("kaboom"),
                "{}",
                e.tb_str
            );
        }
        other => panic!("expected a ValueError, got {other:?}"),
    }

    let items: Vec<i64> = portal
        .open_stream_from_ns::<i64>(
            "pyfuncs",
            "count",
            Payload::from_value(&kwargs(vec![("n", 5.into())])),
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items, [0, 1, 2, 3, 4]);

    let (ctx, first): (_, i64) = portal
        .open_context_from_ns(
            "pyfuncs",
            "echo_ctx",
            Payload::from_value(&kwargs(vec![("start", 7.into())])),
        )
        .await
        .unwrap();
    assert_eq!(first, 7);
    {
        let mut stream = ctx.open_stream::<String>().await.unwrap();
        for word in ["a", "b"] {
            stream.send(word.to_owned()).await.unwrap();
            let echoed = within("an echo", stream.next()).await.unwrap().unwrap();
            assert_eq!(echoed, word);
        }
    }
    assert_eq!(
        within("the context result", ctx.result::<String>())
            .await
            .unwrap(),
        "done"
    );

    // Dropping a pending call cancels the Python task.
    let sleeper = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        portal.run_from_ns("pyfuncs", "sleep_forever", kwargs(vec![])),
    )
    .await;
    assert!(sleeper.is_err());
    within("the python task to be cancelled", async {
        loop {
            let n = portal
                .run_from_ns("pyfuncs", "cancelled_count", kwargs(vec![]))
                .await
                .unwrap();
            if n.as_u64() == Some(1) {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;

    // And the Rust side cancels the Python actor.
    assert!(portal.cancel_actor().await.unwrap());
    let exit = within("the python actor to exit", server.wait())
        .await
        .unwrap();
    assert!(exit.success(), "{exit}");
}

/// A Rust nursery starts a Python tractor actor as its child (tractor's own child entry point,
/// then our init map), calls it, and tears it down; the Python process is reaped.
#[actor::test]
async fn rust_spawns_python() {
    use actor::{Program, Value};
    let python = tractor::tractor_python(REGISTRAR);
    let nursery = actor::open_nursery().await.unwrap();
    let module = workspace().join("tests/interop/pyfuncs.py");
    let child = nursery
        .start_actor("py-child")
        .enable("pyfuncs")
        .program(Program::tractor(python).module_path("pyfuncs", module.display().to_string()))
        .await
        .unwrap();
    assert_eq!(child.peer().name, "py-child");
    let args = Value::Map(vec![("a".into(), 40.into()), ("b".into(), 2.into())]);
    let sum = child.run_from_ns("pyfuncs", "add", args).await.unwrap();
    assert_eq!(sum.as_i64(), Some(42));
    let pid = child
        .run_from_ns("pyfuncs", "getpid", Value::Map(vec![]))
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    // The Python child registered with the root's (Rust) registrar.
    assert!(actor::find_actor("py-child").await.unwrap().is_some());
    nursery.close().await.unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "python child not reaped"
    );
}

/// A team of Python tractor workers runs tasks by name: results, a Python exception class named
/// in the retry list retried on the other member, any other exception reported at once.
#[actor::test]
async fn a_team_of_python_tractor_workers() {
    use actor::{
        Program, Value,
        team::{Task, TaskId},
    };
    use futures::StreamExt;
    let python = tractor::tractor_python(REGISTRAR);
    let module = workspace().join("tests/interop/pyfuncs.py");
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("py-worker")
        .enable("pyfuncs")
        .program(Program::tractor(python).module_path("pyfuncs", module.display().to_string()))
        .members(2)
        .retry_on("ConnectionResetError")
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .recruit()
        .await
        .unwrap();
    let adds = (0..20).map(|i: i64| {
        let kwargs = Value::Map(vec![("a".into(), i.into()), ("b".into(), 1.into())]);
        Task::from_ns("pyfuncs", "add", &kwargs).unwrap()
    });
    let mut sums: Vec<(TaskId, i64)> = team
        .map_tasks(adds)
        .map(|o| (o.task, o.result.unwrap().as_i64().unwrap()))
        .collect()
        .await;
    sums.sort();
    assert_eq!(sums, (1..=20).map(|t| (t, t as i64)).collect::<Vec<_>>());

    let marker = std::env::temp_dir().join(format!("actor-py-flaky-{}", actor::Uid::new("m").uuid));
    let kwargs = Value::Map(vec![("marker".into(), marker.display().to_string().into())]);
    let flaky = team
        .run(Task::from_ns("pyfuncs", "flaky", &kwargs).unwrap())
        .await;
    let _ = std::fs::remove_file(&marker);
    assert_eq!(flaky.attempts.len(), 2, "{:?}", flaky.attempts);
    assert!(
        flaky.attempts[0]
            .failure
            .as_deref()
            .unwrap()
            .contains("ConnectionResetError")
    );
    assert_ne!(flaky.attempts[0].member, flaky.attempts[1].member);
    let pid: u32 = flaky.result.unwrap().decode().unwrap();

    let kwargs = Value::Map(vec![("msg".into(), "nope".into())]);
    let failed = team
        .run(Task::from_ns("pyfuncs", "fail", &kwargs).unwrap())
        .await;
    assert_eq!(failed.attempts.len(), 1, "a ValueError is not retried");
    let err = failed.result.unwrap_err();
    let remote = err.as_remote().unwrap();
    assert_eq!(remote.type_str, "ValueError");
    assert!(remote.tb_str.contains("nope"), "{}", remote.tb_str);

    let status = team.dismiss(Duration::from_secs(5)).await;
    assert_eq!(
        (status.succeeded, status.failed, status.retries),
        (21, 1, 1)
    );
    nursery.close().await.unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "python worker not reaped"
    );
}

/// A Rust actor registers with a Python tractor registrar (arbiter) and Python finds it by
/// name, calls it and cancels it.
#[tokio::test]
async fn a_rust_actor_registers_with_a_python_registrar() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let python = tractor::tractor_python(REGISTRAR);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut arbiter = Command::new(&python)
        .arg(workspace().join("tests/interop/python_registrar.py"))
        .arg(port.to_string())
        .arg("rust-daemon")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(arbiter.stdout.take().unwrap()).lines();
    let ready = within("the python registrar", lines.next_line())
        .await
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));
    let args = [
        "--name",
        "rust-daemon",
        "--listen",
        "tcp://127.0.0.1:0",
        "--registrar",
        &format!("tcp://127.0.0.1:{port}"),
    ]
    .map(String::from);
    let (mut daemon, _) = start_listening(DAEMON, &args, 1).await;
    let mut said = Vec::new();
    while let Some(line) = within("the python side", lines.next_line()).await.unwrap() {
        said.push(line);
    }
    assert_eq!(said, ["add -> 42", "done"]);
    assert!(within("python", arbiter.wait()).await.unwrap().success());
    assert!(
        within("the daemon to exit", daemon.wait())
            .await
            .unwrap()
            .success()
    );
}

/// The polyglot example runs: a Rust root with a Rust and a Python child.
#[tokio::test]
async fn the_polyglot_example_runs() {
    let python = tractor::tractor_python(REGISTRAR);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stdout = stdout_of_success(
        "the polyglot example",
        Command::new(env!("CARGO_BIN_EXE_polyglot"))
            .env("ACTOR_TRACTOR_PYTHON", python)
            .env("ACTOR_REGISTRAR", format!("tcp://127.0.0.1:{port}")),
    )
    .await;
    assert!(stdout.contains("py-worker:   add(20, 22) = 42"), "{stdout}");
    assert!(stdout.contains("Python [0, 1, 2]"), "{stdout}");
    assert!(stdout.contains("RemoteActorError ValueError"), "{stdout}");
}
