//! A root program driven line by line through stdin, for the discovery tests: several of
//! these share one registrar address (`ACTOR_REGISTRAR`), the way unrelated programs on one
//! machine share the default one.
//!
//! Commands, one per line; each answers with one line:
//! - `spawn NAME` → `spawned NAME at ADDR pid PID` (a child in this program's nursery)
//! - `find NAME` → `found NAME at ADDR` or `missing NAME`
//! - `registry` → `registry NAME NAME ...` (the names registered, sorted)
//! - `quit` → the tree closes and the program exits 0.
//!
//! It first prints `root at ADDR`.

use std::collections::HashMap;

use tokio::io::{AsyncBufReadExt, BufReader};

mod roles {
    use actor::Addr;

    /// Where this actor listens.
    #[actor::remote(ns = "roles")]
    pub(crate) async fn addr() -> String {
        actor::Actor::current()
            .and_then(|me| me.addrs().first().map(Addr::to_string))
            .unwrap_or_default()
    }

    /// This actor's process id.
    #[actor::remote(ns = "roles")]
    pub(crate) async fn pid() -> u32 {
        std::process::id()
    }
}

#[actor::main]
async fn main() -> actor::Result<()> {
    let me = actor::Actor::current().ok_or_else(|| actor::Error::Usage("no root".into()))?;
    println!("root at {}", me.addrs()[0]);
    let nursery = actor::open_nursery().await?;
    let mut children = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("spawn"), Some(name)) => {
                let child = nursery.start_actor(name).enable("roles").await?;
                let addr = child.run(roles::addr {}).await?;
                let pid = child.run(roles::pid {}).await?;
                println!("spawned {name} at {addr} pid {pid}");
                children.insert(name.to_owned(), child);
            }
            (Some("find"), Some(name)) => match actor::find_actor(name).await {
                Ok(Some(portal)) => {
                    let addr = portal.run(roles::addr {}).await?;
                    println!("found {name} at {addr}");
                }
                Ok(None) => println!("missing {name}"),
                Err(e) => println!("error {e}"),
            },
            (Some("registry"), None) => match actor::get_registry().await {
                Ok(table) => {
                    let mut names: Vec<&str> = table
                        .keys()
                        .filter_map(|key| key.rsplit_once('.').map(|(name, _)| name))
                        .collect();
                    names.sort();
                    println!("registry {}", names.join(" "));
                }
                Err(e) => println!("error {e}"),
            },
            (Some("quit"), None) => break,
            _ => println!("error unknown command {line:?}"),
        }
    }
    nursery.close().await
}
