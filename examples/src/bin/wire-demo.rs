//! Two processes speaking the actor wire protocol (tractor 0.1.0a5's) over a Unix socket.
//!
//! `wire-demo` starts a copy of itself as a child process serving one function, `demo.add`,
//! connects to it, handshakes, calls `add(a=1, b=2)`, calls a function that does not exist,
//! and closes with the sentinel, printing every frame that crosses the socket.
//!
//! `wire-demo serve --listen URL [--once]` is the child's role; it can be started by hand too,
//! on `tcp://HOST:PORT` or `unix:///PATH`.

use std::{process::Stdio, time::Duration};

use actor_ipc::{
    Addr, CallKind, Channel, ChannelConfig, Cmd, ErrorInfo, Listener, Msg, Payload, Uid,
};
use clap::{Parser, Subcommand};
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
    sync::mpsc,
};

#[derive(Parser)]
#[command(about = "Two processes exchanging a call's frames over the actor wire protocol")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Role {
    /// Serve `demo.add` on an address.
    Serve {
        /// Where to listen: tcp://HOST:PORT or unix:///PATH.
        #[arg(long)]
        listen: Addr,
        /// Exit after the first connection ends.
        #[arg(long)]
        once: bool,
    },
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    examples::init_logging();
    match Cli::parse().role {
        None => demo().await,
        Some(Role::Serve { listen, once }) => serve(listen, once).await,
    }
}

/// The parent's side: start the child, call it, show the frames.
async fn demo() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("actor-wire-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let addr = Addr::unix(dir.join("child.sock"));
    let result = call_child(&addr).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn call_child(addr: &Addr) -> Result<(), Error> {
    let exe = std::env::current_exe()?;
    println!("parent: starting child: wire-demo serve --listen {addr} --once");
    let mut child = Command::new(exe)
        .args(["serve", "--listen", &addr.to_string(), "--once"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("child has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| "child did not start listening within 10 s")??
        .ok_or("child exited before listening")?;
    println!("child:  {ready}");

    let me = Uid::new("parent");
    let mut channel = Channel::connect(addr, &me, &ChannelConfig::default()).await?;
    println!(
        "parent: connected; handshake sent {}, received {}",
        me.to_value(),
        channel.peer().to_value()
    );

    #[derive(serde::Serialize)]
    struct AddArgs {
        a: i64,
        b: i64,
    }
    let call = Msg::from(Cmd {
        ns: "demo".into(),
        func: "add".into(),
        kwargs: Payload::encode(&AddArgs { a: 1, b: 2 })?,
        caller: me.clone().into(),
        cid: "c1".into(),
        trace: None,
    });
    show("parent → child", &call)?;
    channel.send(&call).await?;
    let sum = loop {
        let reply = next(&mut channel).await?;
        show("parent ← child", &reply)?;
        match reply {
            Msg::Return { value, .. } => break value.decode::<i64>()?,
            Msg::FuncType { .. } => continue,
            other => return Err(format!("unexpected reply {other:?}").into()),
        }
    };
    println!("parent: add(a=1, b=2) returned {sum}");

    let missing = Msg::from(Cmd {
        ns: "demo".into(),
        func: "subtract".into(),
        kwargs: Payload::empty_map(),
        caller: me.into(),
        cid: "c2".into(),
        trace: None,
    });
    show("parent → child", &missing)?;
    channel.send(&missing).await?;
    let reply = next(&mut channel).await?;
    show("parent ← child", &reply)?;
    if let Msg::Error { error, .. } = &reply {
        println!(
            "parent: the call failed remotely: {}: {}",
            error.type_str, error.tb_str
        );
    }

    println!("parent → child  sentinel (nil): stop serving this connection");
    let (sender, mut reader) = channel.into_split();
    sender.close().await?;
    while let Some(msg) = reader.recv().await? {
        show("parent ← child", &msg)?;
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .map_err(|_| "child did not exit within 10 s")??;
    println!("parent: child exited ({status}); done");
    if !status.success() {
        return Err(format!("child failed: {status}").into());
    }
    Ok(())
}

async fn next(channel: &mut Channel) -> Result<Msg, Error> {
    tokio::time::timeout(Duration::from_secs(10), channel.recv())
        .await
        .map_err(|_| "no reply within 10 s")??
        .ok_or_else(|| "child closed the connection".into())
}

/// Prints a message as the value on the wire and its frame's bytes.
fn show(direction: &str, msg: &Msg) -> Result<(), Error> {
    let frame = msg.to_frame()?;
    let hex: String = frame.iter().take(24).map(|b| format!("{b:02x}")).collect();
    let more = if frame.len() > 24 { "…" } else { "" };
    println!("{direction}  {}", msg.to_value());
    println!("{:16}frame: {} bytes: {hex}{more}", "", frame.len());
    Ok(())
}

/// The child's side: serve `demo.add` until told to stop.
async fn serve(addr: Addr, once: bool) -> Result<(), Error> {
    let listener = Listener::bind(&addr).await?;
    // The line a parent (or a test) waits for: from here on connections are accepted.
    println!("listening on {}", listener.local_addr());
    let (ended, mut connection_ended) = mpsc::unbounded_channel();
    let serving = listener.serve(
        Uid::new("wire-demo-child"),
        ChannelConfig::default(),
        move |accepted| {
            let ended = ended.clone();
            async move {
                if let Ok(channel) = accepted {
                    if let Err(e) = serve_connection(channel).await {
                        tracing::warn!(error = %e, "connection ended with an error");
                    }
                }
                let _ = ended.send(());
            }
        },
    );
    tokio::select! {
        () = serving => Ok(()),
        _ = connection_ended.recv(), if once => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn serve_connection(mut channel: Channel) -> Result<(), Error> {
    while let Some(msg) = channel.recv().await? {
        match msg {
            Msg::Cmd(cmd) => {
                for reply in answer(*cmd) {
                    channel.send(&reply).await?;
                }
            }
            Msg::Sentinel => {
                // Answer the sentinel with ours and close.
                channel.sender().close().await?;
                return Ok(());
            }
            other => tracing::debug!(?other, "ignoring a message that is not a call"),
        }
    }
    Ok(())
}

fn answer(cmd: Cmd) -> Vec<Msg> {
    match add(&cmd) {
        Ok(value) => vec![
            Msg::FuncType {
                cid: cmd.cid.clone(),
                kind: CallKind::AsyncFunc,
            },
            Msg::Return {
                cid: cmd.cid,
                value,
            },
        ],
        Err(error) => vec![Msg::Error {
            cid: Some(cmd.cid),
            error: Box::new(error),
        }],
    }
}

/// Runs `demo.add` for a call, or says why it cannot.
fn add(cmd: &Cmd) -> Result<Payload, ErrorInfo> {
    #[derive(Deserialize)]
    struct AddArgs {
        a: i64,
        b: i64,
    }
    if (cmd.ns.as_str(), cmd.func.as_str()) != ("demo", "add") {
        let detail = format!("{}.{} is not served here", cmd.ns, cmd.func);
        return Err(ErrorInfo::new("NameError", detail));
    }
    let args = cmd
        .kwargs
        .decode::<AddArgs>()
        .map_err(|e| ErrorInfo::new("TypeError", format!("add(a: i64, b: i64): {e}")))?;
    let sum = args
        .a
        .checked_add(args.b)
        .ok_or_else(|| ErrorInfo::new("OverflowError", "a + b overflows i64"))?;
    Payload::encode(&sum).map_err(|e| ErrorInfo::new("EncodeError", e.to_string()))
}
