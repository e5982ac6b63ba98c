//! Calls a function of a running actor from the command line, untyped.
//!
//! ```text
//! cargo run --release -p examples --bin call -- unix:///tmp/d.sock demo add a=1 b=2
//! cargo run --release -p examples --bin call -- --stream unix:///tmp/d.sock demo count n=3
//! ```
//!
//! Arguments are `name=value`; a value reads as an integer, a float, `true`/`false`/`nil`, or
//! else a string. The result (or each stream item) is printed as a msgpack value.

use std::process::ExitCode;

use actor::{Addr, Payload, Value};
use clap::Parser;
use futures::StreamExt;

#[derive(Parser)]
#[command(about = "Call a remote function of a running actor")]
struct Cli {
    /// A file holding the secret the actor requires (as its `--auth-file`).
    #[arg(long, value_name = "PATH")]
    auth_file: Option<std::path::PathBuf>,
    /// The function is a stream: print each item.
    #[arg(long)]
    stream: bool,
    /// The actor's address: tcp://HOST:PORT or unix:///PATH.
    addr: Addr,
    /// The namespace.
    ns: String,
    /// The function.
    func: String,
    /// Arguments as name=value.
    args: Vec<String>,
}

fn parse_value(text: &str) -> Value {
    match text {
        "true" => Value::Boolean(true),
        "false" => Value::Boolean(false),
        "nil" => Value::Nil,
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::F64))
            .unwrap_or_else(|_| Value::from(text)),
    }
}

fn kwargs(args: &[String]) -> Result<Value, String> {
    args.iter()
        .map(|arg| {
            let (name, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("argument {arg:?} is not name=value"))?;
            Ok((Value::from(name), parse_value(value)))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Value::Map)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    examples::init_logging();
    let cli = Cli::parse();
    match call(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("call: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn call(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let kwargs = kwargs(&cli.args)?;
    if let Some(path) = &cli.auth_file {
        actor::set_process_secret(actor::Secret::from_file(path)?);
    }
    let portal = actor::connect(&cli.addr).await?;
    if cli.stream {
        let mut items = portal
            .open_stream_from_ns::<Value>(&cli.ns, &cli.func, Payload::from_value(&kwargs))
            .await?;
        while let Some(item) = items.next().await {
            println!("{}", item?);
        }
    } else {
        println!("{}", portal.run_from_ns(&cli.ns, &cli.func, kwargs).await?);
    }
    portal.close().await;
    Ok(())
}
