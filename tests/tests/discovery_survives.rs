//! Discovery survives its registrar, and the registrar's ownership rules, with real programs
//! sharing one registrar address as unrelated programs share the default one.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, process::Stdio};

use actor::{Addr, Error, Registry, Uid, ipc::Value};
use actor_tests::within;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

const ROOT: &str = env!("CARGO_BIN_EXE_discovery-root");

/// One `discovery-root` program, driven through its stdin.
struct Program {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    addr: String,
}

impl Program {
    async fn start(registrar: &Addr) -> Self {
        let mut child = Command::new(ROOT)
            .env(actor::discovery::REGISTRAR_ENV, registrar.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = within("the root to start", stdout.next_line())
            .await
            .unwrap()
            .expect("the root exited before starting");
        let addr = first.strip_prefix("root at ").unwrap().to_owned();
        Self {
            child,
            stdin,
            stdout,
            addr,
        }
    }

    /// Sends one command and returns its answer line.
    async fn ask(&mut self, command: &str) -> String {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        within(
            &format!("the answer to {command:?}"),
            self.stdout.next_line(),
        )
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the program exited instead of answering {command:?}"))
    }

    /// `spawn NAME`, returning the child's address.
    async fn spawn(&mut self, name: &str) -> String {
        self.spawn_with_pid(name).await.0
    }

    /// `spawn NAME`, returning the child's address and pid.
    async fn spawn_with_pid(&mut self, name: &str) -> (String, u32) {
        let answer = self.ask(&format!("spawn {name}")).await;
        let rest = answer
            .strip_prefix(&format!("spawned {name} at "))
            .unwrap_or_else(|| panic!("spawn {name}: {answer}"));
        let (addr, pid) = rest.split_once(" pid ").unwrap();
        (addr.to_owned(), pid.parse().unwrap())
    }

    /// Asks `find NAME` until it finds an actor (registration may be under way).
    async fn found(&mut self, name: &str) -> String {
        within(&format!("{name} to be found"), async {
            loop {
                let answer = self.ask(&format!("find {name}")).await;
                if let Some(addr) = answer.strip_prefix(&format!("found {name} at ")) {
                    return addr.to_owned();
                }
            }
        })
        .await
    }

    async fn quit(mut self) {
        self.stdin.write_all(b"quit\n").await.unwrap();
        let status = within("the program to exit", self.child.wait())
            .await
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

fn registrar_in(dir: &Path) -> Addr {
    Addr::unix(dir.join("registrar.sock"))
}

#[tokio::test]
async fn when_the_program_serving_the_registrar_exits_another_takes_it_over() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar_in(dir.path());
    // The first program serves the registrar; the second uses it.
    let first = Program::start(&registrar).await;
    let mut second = Program::start(&registrar).await;
    let w2 = second.spawn("w2").await;
    assert_eq!(second.found("w2").await, w2);

    // The first program exits: its registrar goes with it.
    first.quit().await;

    // The second serves it now: its children still start, and everything registered again.
    let w3 = second.spawn("w3").await;
    assert_eq!(second.found("w3").await, w3);
    assert_eq!(second.found("w2").await, w2);

    // A program started now finds them through the same address.
    let mut third = Program::start(&registrar).await;
    assert_eq!(third.found("w2").await, w2);
    let registry = Registry::connect(&registrar).await.unwrap();
    let table = registry.get_registry().await.unwrap();
    assert!(
        table.values().any(|addr| addr.to_string() == second.addr),
        "the second program's root lists itself: {table:?}"
    );

    // A name held in two trees: each program finds its own.
    let mine = second.spawn("worker").await;
    let theirs = third.spawn("worker").await;
    assert_ne!(mine, theirs);
    assert_eq!(second.found("worker").await, mine);
    assert_eq!(third.found("worker").await, theirs);

    third.quit().await;
    second.quit().await;
}

#[tokio::test]
async fn children_start_and_serve_with_no_registrar_answering() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on: connecting is refused. The root serves it then; make
    // the address unusable instead (a directory where the socket would be).
    let registrar = registrar_in(dir.path());
    std::fs::create_dir(dir.path().join("registrar.sock")).unwrap();
    let mut program = Program::start(&registrar).await;
    let addr = program.spawn("lonely").await;
    assert!(!addr.is_empty());
    program.quit().await;
}

#[tokio::test]
async fn only_the_holder_unregisters_a_name_unless_it_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar_in(dir.path());
    let mut program = Program::start(&registrar).await;
    program.spawn("held").await;
    let registry = Registry::connect(&registrar).await.unwrap();
    let key = within("held to be registered", async {
        loop {
            let table = registry.get_registry().await.unwrap();
            if let Some(key) = table.keys().find(|k| k.starts_with("held.")) {
                return key.clone();
            }
        }
    })
    .await;
    let (name, uuid) = key.rsplit_once('.').unwrap();
    let held = Uid {
        name: name.into(),
        uuid: uuid.into(),
    };
    // Another actor cannot unregister it while it lives, nor register in its name.
    match registry.unregister(&held).await {
        Err(Error::Remote(e)) => assert_eq!(e.type_str, actor::error::PERMISSION_ERROR),
        other => panic!("a stranger unregistered a live actor: {other:?}"),
    }
    let forged = Value::Map(vec![
        ("uid".into(), held.to_value()),
        (
            "sockaddr".into(),
            Addr::tcp("10.9.9.9", 1).to_wire().to_value(),
        ),
    ]);
    match registry
        .portal()
        .run_from_ns("self", "register_actor", forged)
        .await
    {
        Err(Error::Remote(e)) => assert_eq!(e.type_str, actor::error::PERMISSION_ERROR),
        other => panic!("a stranger registered in another's name: {other:?}"),
    }
    assert!(registry.get_registry().await.unwrap().contains_key(&key));
    // Killed, it cannot unregister itself: the registrar forgets it when its registration's
    // connection ends.
    let (_, pid) = program.spawn_with_pid("doomed").await;
    within("doomed to be registered", async {
        while !names(&registry).await.contains(&"doomed".to_owned()) {}
    })
    .await;
    actor_tests::signal(pid, "-KILL");
    within("the registrar to forget a killed actor", async {
        while names(&registry).await.contains(&"doomed".to_owned()) {}
    })
    .await;
    drop(registry);
    // The killed child fails the program's nursery: the program is ended by the test.
    let mut child = program.child;
    child.kill().await.unwrap();
}

/// The names registered now.
async fn names(registry: &Registry) -> Vec<String> {
    registry
        .get_registry()
        .await
        .unwrap()
        .keys()
        .filter_map(|k| k.rsplit_once('.').map(|(name, _)| name.to_owned()))
        .collect()
}

/// A program holding the registrar's address but stopped (SIGSTOP: its port accepts, nothing
/// answers) does not stop new programs: they start, spawn children and serve, registering in
/// the background once it answers again.
#[tokio::test]
async fn a_stopped_program_holding_the_registrar_does_not_stop_new_trees() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar_in(dir.path());
    let first = Program::start(&registrar).await;
    let pid = first.child.id().unwrap();
    actor_tests::signal(pid, "-STOP");
    let mut second = Program::start(&registrar).await;
    let addr = second.spawn("worker").await;
    assert!(!addr.is_empty());
    actor_tests::signal(pid, "-CONT");
    // Once the registrar answers again, the new tree registers with it.
    assert_eq!(second.found("worker").await, addr);
    second.quit().await;
    first.quit().await;
}
