//! Malformed input over real sockets, each case its own test, on TCP and on a Unix socket.
//!
//! For every case the served connection ends with a typed error (never a panic), the server
//! closes that one connection, and the listener goes on accepting and serving the next one.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actor_ipc::{ChannelConfig, DecodeError, FrameError, HandshakeError, RecvError};
use actor_tests::{EchoServer, Outcome, RawClient, TRANSPORTS};

const LIMIT: usize = 1024 * 1024;

fn config() -> ChannelConfig {
    ChannelConfig {
        max_frame_len: LIMIT,
        handshake_timeout: Duration::from_secs(5),
        ..ChannelConfig::default()
    }
}

/// Handshakes properly, sends `bytes`, optionally ends the stream, and returns how the server
/// saw the connection end (after checking the server closed it and still serves others).
async fn after_handshake(bytes: &[u8], then_eof: bool) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for transport in TRANSPORTS {
        let mut server = EchoServer::start(transport, config()).await;
        let mut client = RawClient::connect_handshaken(&server.addr).await;
        client.write(bytes).await;
        if then_eof {
            client.shutdown_write().await;
        }
        let outcome = server.next_outcome().await;
        client.read_to_end().await;
        server.assert_still_serving().await;
        outcomes.push(outcome);
    }
    outcomes
}

/// Sends `bytes` instead of a handshake and returns how the server saw it.
async fn instead_of_handshake(bytes: &[u8]) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for transport in TRANSPORTS {
        let mut server = EchoServer::start(transport, config()).await;
        let mut client = RawClient::connect(&server.addr).await;
        client.write(bytes).await;
        let outcome = server.next_outcome().await;
        client.read_to_end().await;
        server.assert_still_serving().await;
        outcomes.push(outcome);
    }
    outcomes
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn truncated_header() {
    for outcome in after_handshake(&[7, 0], true).await {
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Frame(FrameError::TruncatedHeader {
                    received: 2
                }))
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn eof_mid_frame() {
    // The header promises 10 bytes; 3 arrive, then the stream ends.
    for outcome in after_handshake(&[10, 0, 0, 0, 0x93, 0x01, 0x02], true).await {
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Frame(FrameError::TruncatedBody {
                    declared: 10,
                    received: 3
                }))
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn truncated_body() {
    // A complete frame whose msgpack value is cut short: a map of 2 entries ending after the
    // first key.
    for outcome in after_handshake(&framed(b"\x82\xa3cid"), false).await {
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Decode(DecodeError::Truncated { .. }))
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn declared_length_over_the_limit() {
    let declared = 64 * 1024 * 1024_u32;
    let mut bytes = declared.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0xc0; 16]);
    for outcome in after_handshake(&bytes, false).await {
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Frame(FrameError::TooLarge { declared: d, limit: LIMIT }))
                    if d == declared as usize
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn body_that_is_not_msgpack() {
    // 0xc1 is the one byte msgpack never uses.
    for outcome in after_handshake(&framed(&[0xc1, 0x00]), false).await {
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Decode(DecodeError::InvalidMarker {
                    marker: 0xc1,
                    at: 0
                }))
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn cmd_with_four_fields() {
    // {"cmd": ["demo", "add", {}, ["c", "u"]]}
    let body = b"\x81\xa3cmd\x94\xa4demo\xa3add\x80\x92\xa1c\xa1u";
    for outcome in after_handshake(&framed(body), false).await {
        let Outcome::Recv(RecvError::Decode(DecodeError::BadCmd { cid: None, detail })) = &outcome
        else {
            panic!("{outcome:?}");
        };
        let arity = DecodeError::WrongArity {
            field: "cmd",
            expected: 5,
            found: 4,
        };
        assert_eq!(*detail, arity.to_string(), "{outcome:?}");
    }
}

#[tokio::test]
async fn cmd_with_a_non_string_cid() {
    // {"cmd": ["demo", "add", {}, ["c", "u"], 7]}
    let body = b"\x81\xa3cmd\x95\xa4demo\xa3add\x80\x92\xa1c\xa1u\x07";
    for outcome in after_handshake(&framed(body), false).await {
        let Outcome::Recv(RecvError::Decode(DecodeError::BadCmd { cid: None, detail })) = &outcome
        else {
            panic!("{outcome:?}");
        };
        assert!(
            detail.contains("cmd.cid") && detail.contains("an integer"),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn reply_with_a_non_string_cid() {
    // {"return": 3, "cid": 7}
    let body = b"\x82\xa6return\x03\xa3cid\x07";
    for outcome in after_handshake(&framed(body), false).await {
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Decode(DecodeError::WrongType {
                    field: "cid",
                    ..
                }))
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn handshake_that_is_not_a_two_array() {
    // ["name", "uuid", "extra"]
    for outcome in instead_of_handshake(&framed(b"\x93\xa1n\xa1u\xa1x")).await {
        assert!(
            matches!(
                outcome,
                Outcome::Handshake(HandshakeError::Malformed(DecodeError::WrongArity {
                    field: "handshake",
                    expected: 2,
                    found: 3
                }))
            ),
            "{outcome:?}"
        );
    }
    // {"cmd": ...} as the first frame
    for outcome in instead_of_handshake(&framed(b"\x81\xa3cmd\xc0")).await {
        assert!(
            matches!(
                outcome,
                Outcome::Handshake(HandshakeError::Malformed(DecodeError::WrongType {
                    field: "handshake",
                    ..
                }))
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn garbage_before_the_handshake() {
    // An HTTP request: "GET " read as a length is far over the limit.
    for outcome in instead_of_handshake(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await {
        assert!(
            matches!(
                outcome,
                Outcome::Handshake(HandshakeError::Frame(FrameError::TooLarge { .. }))
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn silent_peer_times_out_in_the_handshake() {
    for transport in TRANSPORTS {
        let config = ChannelConfig {
            handshake_timeout: Duration::from_millis(200),
            ..config()
        };
        let mut server = EchoServer::start(transport, config).await;
        let mut client = RawClient::connect(&server.addr).await;
        let outcome = server.next_outcome().await;
        assert!(
            matches!(outcome, Outcome::Handshake(HandshakeError::Timeout(_))),
            "{outcome:?}"
        );
        client.read_to_end().await;
        server.assert_still_serving().await;
    }
}

#[tokio::test]
async fn a_peer_stalling_inside_a_frame_is_cut_off_but_an_idle_one_is_not() {
    for transport in TRANSPORTS {
        let config = ChannelConfig {
            frame_stall_timeout: Duration::from_millis(200),
            ..config()
        };
        let mut server = EchoServer::start(transport, config).await;
        // Idle between frames for longer than the stall timeout: not cut off; then a header
        // declaring 100 bytes, 10 of them, and nothing more.
        let mut client = RawClient::connect_handshaken(&server.addr).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut partial = 100_u32.to_le_bytes().to_vec();
        partial.extend_from_slice(&[0xc0; 10]);
        client.write(&partial).await;
        let outcome = server.next_outcome().await;
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Frame(FrameError::Stalled { received: 14, .. }))
            ),
            "{outcome:?}"
        );
        client.read_to_end().await;
        server.assert_still_serving().await;
    }
}

#[tokio::test]
async fn peer_closing_before_handshake_is_a_plain_close() {
    for transport in TRANSPORTS {
        let mut server = EchoServer::start(transport, config()).await;
        let mut client = RawClient::connect(&server.addr).await;
        client.shutdown_write().await;
        let outcome = server.next_outcome().await;
        assert!(
            matches!(
                outcome,
                Outcome::Handshake(HandshakeError::ClosedBeforeHandshake)
            ),
            "{outcome:?}"
        );
        server.assert_still_serving().await;
    }
}

#[tokio::test]
async fn sentinel_and_clean_eof_end_a_connection_without_error() {
    for transport in TRANSPORTS {
        let mut server = EchoServer::start(transport, config()).await;
        let mut client = RawClient::connect_handshaken(&server.addr).await;
        client.write(&framed(&[0xc0])).await;
        assert!(matches!(server.next_outcome().await, Outcome::Sentinel));

        let mut client = RawClient::connect_handshaken(&server.addr).await;
        client.shutdown_write().await;
        assert!(matches!(server.next_outcome().await, Outcome::Eof));
    }
}
