//! `actor call` and `actor cancel`.

use actor::{Payload, Value};
use futures::StreamExt;
use tokio::io::AsyncBufReadExt;

use crate::{Context, Failure, json};

/// How `actor call` calls.
pub(crate) enum Mode {
    /// A request/response function: one result.
    Function,
    /// A stream function: each item.
    Stream,
    /// A context: `started`, the items exchanged, the result.
    Context,
}

/// A remote failure as the command's failure: the remote error's whole text.
fn failed(what: &str, e: actor::Error) -> Failure {
    match e {
        actor::Error::Connect(_) | actor::Error::Disconnected { .. } => {
            Failure::Unreachable(format!("{what}: {e}"))
        }
        _ => Failure::Failed(format!("{what}: {e}")),
    }
}

/// Prints one value: JSON on its own line (the same with `--json`: JSON is the format).
fn print_value(value: &Value) {
    println!("{}", json::to_json(value));
}

pub(crate) async fn call(
    context: &Context,
    mode: Mode,
    target: &str,
    ns: &str,
    func: &str,
    args: &[String],
) -> Result<(), Failure> {
    let kwargs = json::kwargs(args).map_err(Failure::Failed)?;
    let (portal, addr) = context.portal(target).await?;
    let what = format!("{ns}.{func} on {target} ({addr})");
    match mode {
        Mode::Function => {
            let result = portal
                .run_from_ns(ns, func, kwargs)
                .await
                .map_err(|e| failed(&what, e))?;
            print_value(&result);
        }
        Mode::Stream => {
            let payload = Payload::from_value(&kwargs);
            let mut stream = portal
                .open_stream_from_ns::<Value>(ns, func, payload)
                .await
                .map_err(|e| failed(&what, e))?;
            while let Some(item) = stream.next().await {
                print_value(&item.map_err(|e| failed(&what, e))?);
            }
        }
        Mode::Context => {
            let payload = Payload::from_value(&kwargs);
            let (ctx, started) = portal
                .open_context_from_ns::<Value>(ns, func, payload)
                .await
                .map_err(|e| failed(&what, e))?;
            print_value(&started);
            let mut stream = ctx
                .open_stream::<Value>()
                .await
                .map_err(|e| failed(&what, e))?;
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            let mut stdin_open = true;
            loop {
                tokio::select! {
                    line = lines.next_line(), if stdin_open => match line {
                        Ok(Some(line)) => {
                            stream
                                .send(json::parse_arg(&line))
                                .await
                                .map_err(|e| failed(&what, e))?;
                        }
                        // End of input: say so to the callee, keep reading what it sends.
                        Ok(None) | Err(_) => {
                            stdin_open = false;
                            stream.close().await.map_err(|e| failed(&what, e))?;
                        }
                    },
                    item = stream.next() => match item {
                        Some(item) => print_value(&item.map_err(|e| failed(&what, e))?),
                        None => break,
                    },
                }
            }
            drop(stream);
            let result: Value = ctx.result().await.map_err(|e| failed(&what, e))?;
            print_value(&result);
        }
    }
    Ok(())
}

pub(crate) async fn cancel(
    context: &Context,
    target: &str,
    cid: Option<&str>,
) -> Result<(), Failure> {
    let (portal, addr) = context.portal(target).await?;
    match cid {
        Some(cid) => {
            let cancelled = context
                .within(&addr, portal.cancel_call(cid))
                .await?
                .map_err(|e| failed(&format!("cancelling call {cid} in {target} ({addr})"), e))?;
            if context.json {
                println!(
                    "{}",
                    serde_json::json!({ "cid": cid, "cancelled": cancelled })
                );
            } else if cancelled > 0 {
                println!("cancelled {cancelled} call(s) with id {cid} in {target} ({addr})");
            }
            if cancelled == 0 {
                return Err(Failure::Failed(format!(
                    "no call with id {cid} runs in {target} (see `actor tree`)"
                )));
            }
        }
        None => {
            let acknowledged = context
                .within(&addr, portal.cancel_actor())
                .await?
                .map_err(|e| failed(&format!("cancelling {target} ({addr})"), e))?;
            if context.json {
                println!(
                    "{}",
                    serde_json::json!({ "actor": target, "addr": addr.to_string(), "cancelled": acknowledged })
                );
            } else if acknowledged {
                println!("cancelled {target} ({addr}): it is stopping");
            }
            if !acknowledged {
                return Err(Failure::Failed(format!(
                    "{target} ({addr}) refused to be cancelled"
                )));
            }
        }
    }
    Ok(())
}
