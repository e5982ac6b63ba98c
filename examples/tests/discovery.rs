//! Discovery across separately launched programs: the `registrar` example, `daemon`s that
//! register with it, and clients that find them by name.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use actor::{Addr, Registry};
use common::{signal, start_listening, within};
use examples::demo;
use tokio::process::Child;

const REGISTRAR: &str = env!("CARGO_BIN_EXE_registrar");
const DAEMON: &str = env!("CARGO_BIN_EXE_daemon");

async fn registrar(dir: &tempfile::TempDir) -> (Child, Addr) {
    let listen = Addr::unix(dir.path().join("registrar.sock"));
    let (child, addrs) =
        start_listening(REGISTRAR, &["--listen".into(), listen.to_string()], 1).await;
    (child, addrs[0].clone())
}

async fn daemon(name: &str, registrar: &Addr) -> (Child, Addr) {
    let args = [
        "--name",
        name,
        "--listen",
        "tcp://127.0.0.1:0",
        "--registrar",
        &registrar.to_string(),
    ]
    .map(String::from);
    let (child, addrs) = start_listening(DAEMON, &args, 1).await;
    (child, addrs[0].clone())
}

/// Waits until the registry holds exactly `names` (sorted).
async fn until_registry_is(registry: &Registry, names: &[&str]) {
    within("the registry to settle", async {
        loop {
            let mut now: Vec<String> = registry
                .get_registry()
                .await
                .unwrap()
                .keys()
                .map(|k| k.rsplit_once('.').unwrap().0.to_owned())
                .collect();
            now.sort();
            if now == names {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn separately_launched_programs_find_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reg, reg_addr) = registrar(&dir).await;
    let registry = Registry::connect(&reg_addr).await.unwrap();
    // The registrar lists itself.
    until_registry_is(&registry, &["registrar"]).await;

    let (_d, d_addr) = daemon("calc", &reg_addr).await;
    // Registered before it printed its address.
    assert_eq!(registry.query_actor("calc").await.unwrap(), Some(d_addr));
    let portal = registry.find_actor("calc").await.unwrap().unwrap();
    assert_eq!(portal.run(demo::add { a: 40, b: 2 }).await.unwrap(), 42);
    assert!(registry.find_actor("nobody").await.unwrap().is_none());

    // Cancelling the registrar from another program stops it cleanly.
    assert!(registry.portal().cancel_actor().await.unwrap());
    let exit = within("the registrar to exit", reg.wait()).await.unwrap();
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn wait_for_actor_returns_once_it_registers() {
    let dir = tempfile::tempdir().unwrap();
    let (_reg, reg_addr) = registrar(&dir).await;
    let registry = Registry::connect(&reg_addr).await.unwrap();
    let waiting = tokio::spawn({
        let registry = registry.clone();
        async move { registry.wait_for_actor("late").await }
    });
    let (_d, _) = daemon("late", &reg_addr).await;
    let portal = within("wait_for_actor", waiting).await.unwrap().unwrap();
    assert_eq!(portal.peer().name, "late");
}

#[tokio::test]
async fn actors_unregister_on_every_exit_path() {
    let dir = tempfile::tempdir().unwrap();
    let (_reg, reg_addr) = registrar(&dir).await;
    let registry = Registry::connect(&reg_addr).await.unwrap();
    for exit in ["cancel", "-TERM", "-INT"] {
        let (mut d, d_addr) = daemon("leaver", &reg_addr).await;
        until_registry_is(&registry, &["leaver", "registrar"]).await;
        if exit == "cancel" {
            let portal = actor::connect(&d_addr).await.unwrap();
            assert!(portal.cancel_actor().await.unwrap());
        } else {
            signal(&d, exit).await;
        }
        assert!(within("exit", d.wait()).await.unwrap().success());
        until_registry_is(&registry, &["registrar"]).await;
    }
}

#[tokio::test]
async fn a_killed_registered_actor_is_forgotten_when_its_registration_connection_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (_reg, reg_addr) = registrar(&dir).await;
    let registry = Registry::connect(&reg_addr).await.unwrap();
    let (mut d, _) = daemon("doomed", &reg_addr).await;
    signal(&d, "-KILL").await;
    within("the kill", d.wait()).await.unwrap();
    // SIGKILL gave it no chance to unregister; its registration's connection ended with it,
    // and the registrar forgot it then. (A tractor 0.1.0a5 actor holds no such connection: the
    // lookup that finds it dead drops it, as tests/tests/faults.rs shows for killed subtrees.)
    until_registry_is(&registry, &["registrar"]).await;
    assert!(registry.find_actor("doomed").await.unwrap().is_none());
}

#[tokio::test]
async fn duplicate_names_are_both_registered() {
    let dir = tempfile::tempdir().unwrap();
    let (_reg, reg_addr) = registrar(&dir).await;
    let registry = Registry::connect(&reg_addr).await.unwrap();
    let (_a, a_addr) = daemon("twin", &reg_addr).await;
    let (_b, b_addr) = daemon("twin", &reg_addr).await;
    until_registry_is(&registry, &["registrar", "twin", "twin"]).await;
    let found = registry.query_actor("twin").await.unwrap().unwrap();
    assert!(found == a_addr || found == b_addr);
}
