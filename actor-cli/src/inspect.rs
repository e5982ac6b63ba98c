//! `actor ls`, `actor tree` and `actor top`: what the registrar lists, and what each actor says
//! of itself (`actor.runtime` `info`; an actor that does not answer it, such as a Python
//! tractor 0.1.0a5 actor, is listed with what the registrar knows).

use std::{
    collections::{BTreeMap, HashSet},
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use actor::{ActorReport, Addr};
use serde_json::json;

use crate::{Context, Failure};

/// One registered actor and, if it answered, its report.
struct Listed {
    name: String,
    uuid: String,
    addr: Addr,
    report: Option<ActorReport>,
}

/// The registered actors, each asked for its report (at once, each within the timeout).
async fn listed(context: &Context) -> Result<Vec<Listed>, Failure> {
    let registry = context.registry().await?;
    let table = context
        .ask_registrar(registry.get_registry())
        .await?
        .map_err(|e| {
            Failure::Failed(format!(
                "reading the registrar at {}: {e}",
                context.registrar
            ))
        })?;
    let asked = table.into_iter().map(|(key, addr)| async move {
        // Keys are `name.uuid`; a uuid has no dots.
        let (name, uuid) = key
            .rsplit_once('.')
            .map_or((key.clone(), String::new()), |(n, u)| {
                (n.to_owned(), u.to_owned())
            });
        let report = match context.connect(&addr).await {
            Ok(portal) => {
                let report = tokio::time::timeout(context.timeout, portal.report())
                    .await
                    .ok()
                    .and_then(Result::ok);
                portal.close().await;
                report
            }
            Err(_) => None,
        };
        Listed {
            name,
            uuid,
            addr,
            report,
        }
    });
    let mut all = futures::future::join_all(asked).await;
    all.sort_by(|a, b| (&a.name, &a.uuid).cmp(&(&b.name, &b.uuid)));
    Ok(all)
}

/// `1h02m`, `3m07s`, `12.3s`.
fn age(secs: f64) -> String {
    // Whole seconds for display; the fraction only under a minute.
    let whole = secs.max(0.0) as u64;
    match whole {
        0..60 => format!("{secs:.1}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        _ => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
    }
}

fn short(uuid: &str) -> &str {
    uuid.get(..8).unwrap_or(uuid)
}

pub(crate) async fn ls(context: &Context) -> Result<(), Failure> {
    let all = listed(context).await?;
    if context.json {
        let rows: Vec<_> = all
            .iter()
            .map(|actor| {
                json!({
                    "name": actor.name,
                    "uuid": actor.uuid,
                    "addr": actor.addr.to_string(),
                    "host": actor.report.as_ref().map(|r| r.host.clone()),
                    "pid": actor.report.as_ref().map(|r| r.pid),
                    "uptime_secs": actor.report.as_ref().map(|r| r.uptime_secs),
                    "introspection": actor.report.is_some(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|actor| {
            let (host, pid, up) = actor
                .report
                .as_ref()
                .map_or(("-".to_owned(), "-".to_owned(), "-".to_owned()), |r| {
                    (r.host.clone(), r.pid.to_string(), age(r.uptime_secs))
                });
            [
                actor.name.clone(),
                short(&actor.uuid).to_owned(),
                actor.addr.to_string(),
                host,
                pid,
                up,
            ]
        })
        .collect();
    print_table(&["NAME", "UUID", "ADDRESS", "HOST", "PID", "UPTIME"], &rows);
    if all.is_empty() {
        println!("(no actor is registered at {})", context.registrar);
    }
    Ok(())
}

/// Prints rows in columns as wide as their widest cell.
fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub(crate) async fn tree(context: &Context) -> Result<(), Failure> {
    let all = listed(context).await?;
    let by_uuid: BTreeMap<&str, &Listed> = all.iter().map(|a| (a.uuid.as_str(), a)).collect();
    // A root is an actor no listed actor has as its child.
    let children_of_someone: HashSet<&str> = all
        .iter()
        .filter_map(|a| a.report.as_ref())
        .flat_map(|r| r.children.iter().map(|c| c.uuid.as_str()))
        .collect();
    let roots: Vec<&Listed> = all
        .iter()
        .filter(|a| !children_of_someone.contains(a.uuid.as_str()))
        .collect();
    if context.json {
        let forest: Vec<_> = roots.iter().map(|root| tree_json(root, &by_uuid)).collect();
        println!("{}", serde_json::Value::Array(forest));
        return Ok(());
    }
    if all.is_empty() {
        println!("(no actor is registered at {})", context.registrar);
    }
    for root in roots {
        print_actor(root, &by_uuid, "", "");
    }
    Ok(())
}

fn tree_json(actor: &Listed, by_uuid: &BTreeMap<&str, &Listed>) -> serde_json::Value {
    let children: Vec<_> = actor
        .report
        .iter()
        .flat_map(|r| r.children.iter())
        .map(|child| match by_uuid.get(child.uuid.as_str()) {
            Some(listed) => tree_json(listed, by_uuid),
            None => json!({ "name": child.name, "uuid": child.uuid, "pid": child.pid,
                            "placement": child.placement, "registered": false }),
        })
        .collect();
    json!({
        "name": actor.name,
        "uuid": actor.uuid,
        "addr": actor.addr.to_string(),
        "registered": true,
        "report": actor.report,
        "children": children,
    })
}

/// Prints `actor` and, below it, its children, with box-drawing branches.
fn print_actor(actor: &Listed, by_uuid: &BTreeMap<&str, &Listed>, first: &str, rest: &str) {
    let id = format!("{} [{}]", actor.name, short(&actor.uuid));
    let Some(report) = &actor.report else {
        println!(
            "{first}{id}  {}  (does not report: not an actor of this runtime)",
            actor.addr
        );
        return;
    };
    println!(
        "{first}{id}  pid {}  host {}  {}  up {}  rss {} KiB",
        report.pid,
        report.host,
        actor.addr,
        age(report.uptime_secs),
        report.rss_kib
    );
    let mut details: Vec<String> = report
        .calls
        .iter()
        .map(|call| {
            format!(
                "call {}.{}  cid {}  age {}  from {}",
                call.ns,
                call.func,
                call.cid,
                age(call.age_secs),
                call.caller
            )
        })
        .collect();
    details.extend(report.services.iter().map(|s| {
        let error = s
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        format!("service {} ({}, {}){error}", s.name, s.flavour, s.state)
    }));
    if report.thread_running + report.thread_pending > 0 {
        details.push(format!(
            "threads {}/{} running, {} waiting",
            report.thread_running, report.thread_slots, report.thread_pending
        ));
    }
    let has_children = !report.children.is_empty();
    let detail_prefix = if has_children { "│   " } else { "    " };
    for detail in details {
        println!("{rest}{detail_prefix}{detail}");
    }
    let count = report.children.len();
    for (index, child) in report.children.iter().enumerate() {
        let last = index + 1 == count;
        let (branch, below) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let first = format!("{rest}{branch}");
        let rest = format!("{rest}{below}");
        match by_uuid.get(child.uuid.as_str()) {
            Some(listed) => print_actor(listed, by_uuid, &first, &rest),
            None => println!(
                "{first}{} [{}]  pid {}  {}  (not registered)",
                child.name,
                short(&child.uuid),
                child.pid.map_or("-".to_owned(), |p| p.to_string()),
                child.placement
            ),
        }
    }
}

pub(crate) async fn top(
    context: &Context,
    interval: Duration,
    iterations: Option<u64>,
) -> Result<(), Failure> {
    let terminal = std::io::stdout().is_terminal() && !context.json;
    let mut before: BTreeMap<String, (u64, Instant)> = BTreeMap::new();
    let mut round = 0u64;
    loop {
        let all = listed(context).await?;
        let now = Instant::now();
        let mut rows = Vec::new();
        let mut docs = Vec::new();
        for actor in &all {
            let Some(report) = &actor.report else {
                rows.push([
                    actor.name.clone(),
                    short(&actor.uuid).to_owned(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                continue;
            };
            let rate = before.get(&actor.uuid).map(|(served, at)| {
                let secs = now.duration_since(*at).as_secs_f64().max(1e-3);
                report.calls_served.saturating_sub(*served) as f64 / secs
            });
            before.insert(actor.uuid.clone(), (report.calls_served, now));
            rows.push([
                actor.name.clone(),
                short(&actor.uuid).to_owned(),
                report.pid.to_string(),
                rate.map_or("-".to_owned(), |r| format!("{r:.0}")),
                report.calls.len().to_string(),
                report.rss_kib.to_string(),
            ]);
            docs.push(json!({
                "name": actor.name, "uuid": actor.uuid, "pid": report.pid,
                "calls_per_sec": rate, "running_calls": report.calls.len(),
                "rss_kib": report.rss_kib,
            }));
        }
        if context.json {
            println!("{}", serde_json::Value::Array(docs));
        } else {
            if terminal {
                // Clear the screen and go home: a refreshing table.
                print!("\x1b[2J\x1b[H");
            }
            println!("{} actors at {}", all.len(), context.registrar);
            print_table(
                &["NAME", "UUID", "PID", "CALLS/S", "RUNNING", "RSS KiB"],
                &rows,
            );
        }
        let _ = std::io::stdout().flush();
        round += 1;
        if iterations.is_some_and(|n| round >= n) {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}
