//! A tree with a secret: the root reads it from `ACTOR_AUTH_FILE`, every child and grandchild
//! gets it through a pipe on its stdin (never its arguments or environment), every actor of the
//! tree refuses peers without it, and calls inside the tree work as without one.
//!
//! The tree test proper is `#[ignore]`d: [`a_tree_shares_its_secret_through_pipes_only`]
//! re-runs this binary on it with `ACTOR_AUTH_FILE` set (the secret must be there before the
//! root starts).

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{os::unix::fs::PermissionsExt, time::Duration};

use actor::{
    Addr,
    ipc::{AuthError, Channel, ChannelConfig, ConnectError, HandshakeError, Secret, Uid},
};

/// The secret's text in the file (the runtime proves its bytes).
const SECRET: &str = "a tree's secret: forty bytes, no less!!!";

mod guarded {
    use actor::Addr;

    /// Whether this process's arguments or environment hold `text`.
    #[actor::remote(ns = "guarded")]
    pub(crate) async fn exposes(text: String) -> bool {
        ["/proc/self/cmdline", "/proc/self/environ"]
            .iter()
            .any(|f| {
                let bytes = std::fs::read(f).unwrap_or_default();
                bytes.windows(text.len()).any(|w| w == text.as_bytes())
            })
    }

    /// Where this actor listens.
    #[actor::remote(ns = "guarded")]
    pub(crate) async fn addr() -> String {
        actor::Actor::current()
            .and_then(|me| me.addrs().first().map(Addr::to_string))
            .unwrap_or_default()
    }

    /// Starts a grandchild and asks it whether it exposes `text`, and where it listens.
    #[actor::remote(ns = "guarded")]
    pub(crate) async fn grandchild(text: String) -> actor::Result<(bool, String)> {
        let nursery = actor::open_nursery().await?;
        let child = nursery.start_actor("grandchild").enable("guarded").await?;
        let exposed = child.run(exposes { text }).await?;
        let addr = child.run(addr {}).await?;
        nursery.close().await?;
        Ok((exposed, addr))
    }
}

use guarded::*;

/// Connecting without the secret to an actor of the tree fails with `Required`.
async fn refuses_strangers(addr: &str) {
    let addr: Addr = addr.parse().unwrap();
    let stranger = Channel::connect(&addr, &Uid::new("stranger"), &ChannelConfig::default()).await;
    match stranger {
        Err(ConnectError::Handshake {
            source: HandshakeError::Auth(AuthError::Required),
            ..
        }) => {}
        other => panic!("{addr} let a peer without the secret in: {other:?}"),
    }
    let config = ChannelConfig {
        secret: Some(Secret::new(SECRET).unwrap()),
        ..ChannelConfig::default()
    };
    let member = Channel::connect(&addr, &Uid::new("member"), &config).await;
    assert!(member.is_ok(), "{addr} refused the secret: {member:?}");
}

#[actor::test]
#[ignore = "run by a_tree_shares_its_secret_through_pipes_only, with ACTOR_AUTH_FILE set"]
async fn tree_with_a_secret() -> actor::Result<()> {
    assert!(
        std::env::var_os(actor::AUTH_FILE_ENV).is_some(),
        "run this through a_tree_shares_its_secret_through_pipes_only"
    );
    let hex = Secret::new(SECRET).unwrap().to_hex();
    let nursery = actor::open_nursery().await?;
    let child = nursery.start_actor("child").enable("guarded").await?;
    for text in [SECRET, &hex] {
        assert!(!child.run(exposes { text: text.into() }).await?);
    }
    let child_addr = child.run(addr {}).await?;
    refuses_strangers(&child_addr).await;
    let (exposed, grandchild_addr) = child.run(grandchild { text: hex.clone() }).await?;
    assert!(
        !exposed,
        "the grandchild's arguments or environment hold the secret"
    );
    assert!(!grandchild_addr.is_empty());
    // The root itself.
    let root_addr = actor::Actor::current().unwrap().addrs()[0].to_string();
    refuses_strangers(&root_addr).await;
    nursery.close().await?;
    Ok(())
}

#[test]
fn a_tree_shares_its_secret_through_pipes_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    actor_tests::run_ignored_test_with_env(
        "tree_with_a_secret",
        &[(actor::AUTH_FILE_ENV, path.as_os_str())],
        Duration::from_secs(60),
    );
}
