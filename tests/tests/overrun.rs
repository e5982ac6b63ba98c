//! A producer that does not take flow control (as a tractor 0.1.0a5 peer) against a consumer
//! that falls behind: the consumer gets a clear overrun error, the stream is cancelled with
//! `_cancel_task`, and memory stays bounded by the stream window.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actor::Error;
use actor_ipc::{Addr, CallKind, ChannelConfig, ErrorInfo, Listener, Msg, Payload, Uid};
use actor_tests::within;
use futures::StreamExt;
use tokio::sync::mpsc;

/// A peer that answers `_flow_control` with an error (as 0.1.0a5 does) and answers any other
/// call by streaming `items` integers without waiting. Reports each `_cancel_task` target.
async fn flooding_peer(items: u64) -> (Addr, mpsc::UnboundedReceiver<String>) {
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::bind(&Addr::unix(dir.path().join("flood.sock")))
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let (cancels, cancelled) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _dir = dir;
        let transport = listener.accept().await.unwrap();
        let mut channel =
            actor_ipc::Channel::handshake(transport, &Uid::new("flood"), &ChannelConfig::default())
                .await
                .unwrap();
        while let Ok(Some(msg)) = channel.recv().await {
            let Msg::Cmd(cmd) = msg else { continue };
            match (cmd.ns.as_str(), cmd.func.as_str()) {
                ("self", "_flow_control") => {
                    let error = Msg::Error {
                        cid: Some(cmd.cid),
                        error: Box::new(ErrorInfo::new("AttributeError", "no _flow_control")),
                    };
                    channel.send(&error).await.unwrap();
                }
                ("self", "_cancel_task") => {
                    let target: std::collections::HashMap<String, String> =
                        cmd.kwargs.decode().unwrap();
                    let _ = cancels.send(target["cid"].clone());
                }
                _ => {
                    let functype = Msg::FuncType {
                        cid: cmd.cid.clone(),
                        kind: CallKind::AsyncGen,
                    };
                    channel.send(&functype).await.unwrap();
                    for i in 0..items {
                        let item = Msg::Yield {
                            cid: cmd.cid.clone(),
                            value: Payload::encode(&i).unwrap(),
                        };
                        channel.send(&item).await.unwrap();
                    }
                }
            }
        }
    });
    (addr, cancelled)
}

#[tokio::test]
async fn a_consumer_behind_a_producer_without_flow_control_gets_an_overrun() {
    let window = actor::DEFAULT_STREAM_WINDOW as u64;
    let (addr, mut cancelled) = flooding_peer(window * 8).await;
    let portal = actor::connect(&addr).await.unwrap();
    let mut stream = portal
        .open_stream_from_ns::<u64>("flood", "numbers", Payload::empty_map())
        .await
        .unwrap();
    let cid = stream.cid().to_owned();
    // Not reading: the buffer fills, the call is cancelled.
    let target = within("the overrun's _cancel_task", cancelled.recv())
        .await
        .unwrap();
    assert_eq!(target, cid);
    // What was buffered is still delivered, in order, then the overrun.
    let mut next = 0;
    loop {
        match within("an item", stream.next()).await {
            Some(Ok(item)) => {
                assert_eq!(item, next);
                next += 1;
            }
            Some(Err(Error::Overrun { cid: c, capacity })) => {
                assert_eq!(c, cid);
                assert_eq!(capacity as u64, window);
                break;
            }
            other => panic!("expected items then an overrun, got {other:?}"),
        }
    }
    assert!(next >= window && next < window * 2, "{next} items buffered");
    assert!(stream.next().await.is_none());
}
