//! A tree across three hosts: this root, a `relay` child on the first host given, and its
//! `leaf` child on the second, each started over SSH (the system's `ssh`, with your keys and
//! config) or as a Slurm job step (`srun`). See docs/hosts.md.
//!
//! ```text
//! ACTOR_AUTH_FILE=~/.actor-secret hosts-demo ssh://node1 ssh://node2
//! ACTOR_AUTH_FILE=~/.actor-secret hosts-demo slurm://debug local
//! ```
//!
//! The program must be at the same path on every host (nothing is copied), and the tree needs
//! a secret (`ACTOR_AUTH_FILE`): its actors listen beyond loopback. The root then calls the
//! leaf, found by name, in each of the three ways (a function, a stream, a context), shows a
//! remote error with its trace, cancels a call, measures call latency, and closes the tree.
//!
//! Output lines (a contract for scripts): `tree ID`, `spawned NAME on HOST in MS ms`,
//! `relay: PLACE`, `leaf: PLACE`, `found leaf at ADDR`, `call: ...`, `stream: ...`,
//! `context: ...`, `error: ...`, `cancelled: ...`, `latency: ...`, `closed`. With `--hold` it
//! prints `holding` after the calls and waits (with `--stream`, it prints `tick N` from a
//! stream of the leaf's instead, and `stream failed: ERROR` if that stream breaks, then
//! `relay failed: ERROR`, the relay's account of its leaf).
//!
//! `hosts-demo --find NAME --registrar ADDR` asks the registrar at ADDR for actor NAME and
//! calls it: `found NAME at ADDR: PLACE`.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use actor::{Addr, Context, Host, Registry};
use clap::Parser;
use futures::{Stream, StreamExt, TryStreamExt};

#[derive(Parser)]
#[command(about = "An actor tree across three hosts, over SSH")]
struct Cli {
    /// Where the relay runs (`ssh://[user@]host[:port]`, `slurm`, `slurm://PARTITION` or
    /// `local`).
    relay_host: Option<Host>,
    /// Where the leaf runs (started by the relay, from the relay's host; `local` is the
    /// relay's host).
    leaf_host: Option<Host>,
    /// After the calls, keep the tree up until killed.
    #[arg(long)]
    hold: bool,
    /// With `--hold`: stream ticks from the leaf, one line each.
    #[arg(long, requires = "hold")]
    stream: bool,
    /// Find this actor by name and call it, instead of building a tree.
    #[arg(long, value_name = "NAME", requires = "registrar")]
    find: Option<String>,
    /// The registrar `--find` asks.
    #[arg(long, value_name = "ADDR")]
    registrar: Option<Addr>,
}

/// Where an actor runs: its name, host, pid, address and registrar, as one line.
#[actor::remote(ns = "hosts")]
async fn whereami() -> String {
    place()
}

/// This actor's place: the body of `whereami`, for calling it here too.
fn place() -> String {
    let me = actor::Actor::current();
    let addr = me
        .as_ref()
        .and_then(|me| me.addrs().first().map(Addr::to_string))
        .unwrap_or_default();
    let registrar = me
        .as_ref()
        .and_then(|me| me.registrar().map(|r| r.to_string()))
        .unwrap_or_default();
    let name = me.map(|me| me.uid().name.clone()).unwrap_or_default();
    // A remote child's host as its parent named it (a Slurm step: its node); else "local".
    let host = match (
        std::env::var("ACTOR_CHILD_HOST"),
        std::env::var("SLURMD_NODENAME"),
    ) {
        (Ok(label), Ok(node)) if label == "slurm" => format!("slurm:{node}"),
        (Ok(label), _) => label,
        (Err(_), _) => "local".into(),
    };
    format!(
        "name={name} host={host} pid={} addr={addr} registrar={registrar}",
        std::process::id()
    )
}

/// `0..n`.
#[actor::remote(ns = "hosts")]
fn count(n: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(0..n)
}

/// A tick every 50 ms, forever.
#[actor::remote(ns = "hosts")]
fn ticks() -> impl Stream<Item = u64> {
    futures::stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((n, n + 1))
    })
}

/// Echoes every message of its stream back.
#[actor::remote(ns = "hosts")]
async fn echo(ctx: Context) -> actor::Result<u64> {
    ctx.started(()).await?;
    let mut stream = ctx.open_stream::<String>().await?;
    let mut echoed = 0;
    while let Some(item) = stream.next().await {
        stream.send(item?).await?;
        echoed += 1;
    }
    Ok(echoed)
}

/// Fails with a `ValueError`.
#[actor::remote(ns = "hosts")]
async fn fail(msg: String) -> actor::Result<()> {
    Err(actor::Error::raise("ValueError", msg))
}

/// Never returns until cancelled.
#[actor::remote(ns = "hosts")]
async fn sleep_forever() {
    std::future::pending::<()>().await
}

/// Calls of namespace `hosts` running here, not counting this one.
#[actor::remote(ns = "hosts")]
async fn running() -> u64 {
    actor::Actor::current()
        .map(|me| me.running_calls("hosts").saturating_sub(1))
        .unwrap_or(0)
}

/// The relay: starts the leaf on `leaf_host`, reports both places in `started`, and keeps the
/// leaf up until the root closes the context's stream; then closes its nursery.
#[actor::remote(ns = "hosts", started = (String, String, u64))]
async fn relay(ctx: Context, leaf_host: String) -> actor::Result<String> {
    let host: Host = leaf_host.parse()?;
    let nursery = actor::open_nursery().await?;
    let began = Instant::now();
    let leaf = nursery
        .start_actor("leaf")
        .enable("hosts")
        .host(host)
        .await?;
    let spawn_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    let places = (place(), leaf.run(whereami {}).await?, spawn_ms);
    ctx.started(places).await?;
    let mut stream = ctx.open_stream::<String>().await?;
    while let Some(item) = stream.next().await {
        item?;
    }
    nursery.close().await?;
    Ok("leaf closed".into())
}

#[actor::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match (&cli.find, &cli.registrar) {
        (Some(name), Some(registrar)) => find(name, registrar).await,
        _ => tree(&cli).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hosts-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--find`: asks the registrar for `name` and calls it.
async fn find(name: &str, registrar: &Addr) -> actor::Result<()> {
    let registry = Registry::connect(registrar).await?;
    let addr = registry.query_actor(name).await?.ok_or_else(|| {
        actor::Error::Usage(format!(
            "no actor called {name} at the registrar {registrar}"
        ))
    })?;
    let portal = actor::connect(&addr).await?;
    let place = portal.run(whereami {}).await?;
    println!("found {name} at {addr}: {place}");
    Ok(())
}

async fn tree(cli: &Cli) -> actor::Result<()> {
    let (Some(relay_host), Some(leaf_host)) = (&cli.relay_host, &cli.leaf_host) else {
        return Err(actor::Error::Usage(
            "name two hosts: hosts-demo RELAY_HOST LEAF_HOST (ssh://[user@]host[:port])".into(),
        ));
    };
    let me = actor::Actor::current()
        .ok_or_else(|| actor::Error::Usage("not running as an actor".into()))?;
    println!("tree {}", me.uid().uuid);
    let nursery = actor::open_nursery().await?;
    let began = Instant::now();
    let relay_portal = nursery
        .start_actor("relay")
        .enable("hosts")
        .host(relay_host.clone())
        .await?;
    println!(
        "spawned relay on {relay_host} in {} ms",
        began.elapsed().as_millis()
    );
    let (ctx, (relay_place, leaf_place, leaf_ms)) = relay_portal
        .open_context(relay {
            leaf_host: leaf_host.to_string(),
        })
        .await?;
    println!("spawned leaf on {leaf_host} in {leaf_ms} ms");
    println!("relay: {relay_place}");
    println!("leaf: {leaf_place}");

    // Discovery: the leaf registered with the root's registrar from its own host.
    let registry = Registry::connect_default().await?;
    let leaf_addr = registry
        .query_actor("leaf")
        .await?
        .ok_or_else(|| actor::Error::Usage("the leaf is not registered".into()))?;
    println!("found leaf at {leaf_addr}");
    let leaf = actor::connect(&leaf_addr).await?;

    println!("call: leaf.whereami -> {}", leaf.run(whereami {}).await?);

    // A failed item ends the demo with its error (no stand-in value to add up).
    let items: Vec<u64> = leaf
        .open_stream_from(count { n: 1000 })
        .await?
        .try_collect()
        .await?;
    println!(
        "stream: {} items from leaf, sum {}",
        items.len(),
        items.iter().sum::<u64>()
    );

    let (echo_ctx, _) = leaf.open_context(echo {}).await?;
    let mut echo_stream = echo_ctx.open_stream::<String>().await?;
    let mut echoed = Vec::new();
    for word in ["one", "two", "three"] {
        echo_stream.send(word.to_owned()).await?;
        if let Some(back) = echo_stream.next().await {
            echoed.push(back?);
        }
    }
    drop(echo_stream);
    let count: u64 = echo_ctx.result().await?;
    println!(
        "context: leaf echoed {} ({count} messages)",
        echoed.join(" ")
    );

    match leaf
        .run(fail {
            msg: "no such setting".into(),
        })
        .await
    {
        Err(actor::Error::Remote(e)) => {
            let from = e.src_uid.as_ref().map_or("?", |uid| uid.name.as_str());
            println!("error: {} raised in {from}, its trace:", e.type_str);
            for line in e.tb_str.lines() {
                println!("  | {line}");
            }
        }
        other => println!("error: expected a remote ValueError, got {other:?}"),
    }

    let gave_up = tokio::time::timeout(Duration::from_millis(200), leaf.run(sleep_forever {}))
        .await
        .is_err();
    let mut still = leaf.run(running {}).await?;
    for _ in 0..100 {
        if still == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        still = leaf.run(running {}).await?;
    }
    println!(
        "cancelled: a call dropped after 200 ms (timed out: {gave_up}); calls running in leaf now: {still}"
    );

    let mut samples = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let call = Instant::now();
        leaf.run(running {}).await?;
        samples.push(call.elapsed());
    }
    samples.sort();
    println!(
        "latency: root -> leaf p50 {} us, p99 {} us over {} calls",
        samples[samples.len() / 2].as_micros(),
        samples[samples.len() * 99 / 100].as_micros(),
        samples.len()
    );

    if cli.hold {
        println!("holding");
        if cli.stream {
            let mut ticks = leaf.open_stream_from(ticks {}).await?;
            while let Some(tick) = ticks.next().await {
                match tick {
                    Ok(n) => println!("tick {n}"),
                    Err(e) => {
                        println!("stream failed: {e}");
                        // The relay's view: closing its context makes it close its nursery,
                        // which reports how its leaf ended.
                        if let Ok(stream) = ctx.open_stream::<String>().await {
                            drop(stream);
                        }
                        let said =
                            tokio::time::timeout(Duration::from_secs(10), ctx.result::<String>())
                                .await;
                        match said {
                            Ok(Ok(said)) => println!("relay said: {said}"),
                            Ok(Err(relay)) => {
                                // One line: the remote trace's lines joined.
                                let said = relay.to_string().replace('\n', " | ");
                                println!("relay failed: {said}");
                            }
                            Err(_) => println!("relay failed: no answer in 10 s"),
                        }
                        return Err(e);
                    }
                }
            }
            println!("stream failed: it ended");
            return Err(actor::Error::Usage("the ticks stream ended".into()));
        }
        std::future::pending::<()>().await;
    }

    drop(leaf);
    let ctx_stream = ctx.open_stream::<String>().await?;
    drop(ctx_stream);
    let said: String = ctx.result().await?;
    nursery.close().await?;
    println!("closed ({said}, relay closed)");
    Ok(())
}
