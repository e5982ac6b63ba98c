//! Authentication: proof of a shared secret before anything else is accepted.
//!
//! tractor 0.1.0a5 lets anyone who can connect run any enabled function or stop the actor. A
//! tree that is given a [`Secret`] (a "cookie", as Erlang calls it) refuses every peer that
//! cannot prove it holds the same secret. The proof is an HMAC-SHA256 challenge-response, run
//! on a fresh connection before the uid handshake, so an unauthenticated peer never reaches
//! the protocol at all. The secret itself never crosses the wire.
//!
//! The exchange (each message one frame, msgpack maps; `docs/protocol-notes.md` has the
//! reference):
//!
//! 1. Both sides send `{"auth": "hmac-sha256", "nonce": <32 random bytes>}` at once.
//! 2. The connecting side sends `{"auth_proof": HMAC(secret, "actor auth v1 connecting" ||
//!    accepting nonce || connecting nonce)}`.
//! 3. The accepting side checks it (in constant time). On a mismatch it sends
//!    `{"auth_refused": reason}` and closes; otherwise it sends its own proof,
//!    `HMAC(secret, "actor auth v1 accepting" || connecting nonce || accepting nonce)`.
//! 4. The connecting side checks that proof: it too knows its peer holds the secret.
//!
//! Every proof also covers the address of the connection's accepting end (its TCP address, or
//! its Unix socket's path), as each side sees it. The labels differ by role, so a proof one
//! connection produces is never the one another connection asks for (no reflection); fresh
//! nonces on both sides make every proof single-use; and the address makes a proof worthless
//! at any other listener, so a program squatting an address a member dials (say a registrar's
//! port) cannot relay that member's proofs to another member. A consequence: members must
//! reach each other directly, not through address translation (a forwarded port).
//!
//! Authentication is not encryption: the frames that follow are in the clear, so a secret
//! protects trees on loopback, Unix sockets and trusted networks, not against someone who can
//! rewrite packets in flight.

use std::{fmt, io, path::Path, sync::Arc};

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

use crate::{
    error::AuthError,
    frame::FrameCodec,
    msg::Msg,
    transport::{ReadHalf, WriteHalf},
};

/// The scheme named in the challenge, so a later scheme can be told apart.
pub const AUTH_SCHEME: &str = "hmac-sha256";
/// How many random bytes each side's challenge holds.
const NONCE_LEN: usize = 32;
/// Label of the connecting side's proof.
const CONNECTING_LABEL: &[u8] = b"actor auth v1 connecting";
/// Label of the accepting side's proof.
const ACCEPTING_LABEL: &[u8] = b"actor auth v1 accepting";

/// A tree's shared secret. Cheap to clone; never printed (its `Debug` shows nothing of it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    bytes: Arc<[u8]>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.bytes.len())
    }
}

impl Secret {
    /// The shortest secret accepted: 16 bytes. A short secret could be guessed offline from
    /// one observed exchange.
    pub const MIN_LEN: usize = 16;

    /// A secret from these bytes; at least [`Secret::MIN_LEN`] of them.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, AuthError> {
        let bytes: Vec<u8> = bytes.into();
        if bytes.len() < Self::MIN_LEN {
            return Err(AuthError::BadSecret(format!(
                "a secret needs at least {} bytes, this one has {}",
                Self::MIN_LEN,
                bytes.len()
            )));
        }
        Ok(Self {
            bytes: bytes.into(),
        })
    }

    /// 32 bytes from the operating system's random source: a secret for a tree that needs one
    /// and was given none.
    pub fn generate() -> io::Result<Self> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self {
            bytes: bytes.to_vec().into(),
        })
    }

    /// Reads the secret from a file: its bytes, without trailing whitespace (so `echo` and
    /// editors' final newlines do not matter). The file should be readable by its owner only;
    /// a file others can read is accepted with a warning.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let unreadable = |e: io::Error| {
            AuthError::BadSecret(format!(
                "cannot read the secret file {}: {e}",
                path.display()
            ))
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the secret file can be read by other users; `chmod 600` it"
            );
        }
        let mut bytes = std::fs::read(path).map_err(unreadable)?;
        while bytes.last().is_some_and(u8::is_ascii_whitespace) {
            bytes.pop();
        }
        Self::new(bytes).map_err(|e| match e {
            AuthError::BadSecret(why) => AuthError::BadSecret(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// The secret as lowercase hex, to hand to a child through a pipe.
    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The secret from [`Secret::to_hex`]'s form.
    pub fn from_hex(hex: &str) -> Result<Self, AuthError> {
        let hex = hex.trim();
        let bad = || AuthError::BadSecret("the secret is not hex".into());
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        Self::new(bytes)
    }

    fn proof(&self, label: &[u8], first: &[u8], second: &[u8], binding: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(label);
        // Lengths first: no two different inputs are ever the same bytes.
        for part in [first, second, binding.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

/// Which end of the connection this side is: the proofs are labelled by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// This side connected.
    Connecting,
    /// This side accepted.
    Accepting,
}

/// One authentication message as read from a frame.
#[derive(Debug)]
pub(crate) enum AuthMsg {
    /// A challenge: the peer's nonce.
    Challenge(Vec<u8>),
    /// A proof.
    Proof(Vec<u8>),
    /// The peer refused our proof.
    Refused(String),
}

/// A fresh nonce.
fn nonce() -> Result<[u8; NONCE_LEN], AuthError> {
    let mut nonce = [0_u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| AuthError::BadSecret(format!("no random source for a nonce: {e}")))?;
    Ok(nonce)
}

/// A frame (length prefix included) holding a map of one string key and a value written by
/// `value`, or two entries for a challenge.
fn frame(entries: &[(&str, Entry<'_>)]) -> Bytes {
    let mut body = Vec::with_capacity(64);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_map_len(&mut body, entries.len() as u32);
    for (key, value) in entries {
        let _ = rmp::encode::write_str(&mut body, key);
        match value {
            Entry::Str(s) => {
                let _ = rmp::encode::write_str(&mut body, s);
            }
            Entry::Bin(b) => {
                let _ = rmp::encode::write_bin(&mut body, b);
            }
        }
    }
    let mut out = BytesMut::with_capacity(4 + body.len());
    out.put_u32_le(body.len() as u32);
    out.put_slice(&body);
    out.freeze()
}

enum Entry<'a> {
    Str(&'a str),
    Bin(&'a [u8]),
}

/// Whether a frame body is an authentication challenge (a side without a secret uses this to
/// say "the peer requires authentication" rather than "malformed handshake").
pub(crate) fn is_challenge(body: &[u8]) -> bool {
    matches!(parse(body), Ok(AuthMsg::Challenge(_)))
}

/// Reads an authentication message, without recursion and without trusting any length.
fn parse(mut body: &[u8]) -> Result<AuthMsg, String> {
    let cur = &mut body;
    let entries = rmp::decode::read_map_len(cur).map_err(|_| "not a map".to_string())?;
    if entries > 4 {
        return Err(format!("{entries} entries, at most 4 expected"));
    }
    let (mut scheme, mut nonce, mut proof, mut refused) = (None, None, None, None);
    for _ in 0..entries {
        let key = read_str(cur)?;
        match key.as_str() {
            "auth" => scheme = Some(read_str(cur)?),
            "nonce" => nonce = Some(read_bin(cur)?),
            "auth_proof" => proof = Some(read_bin(cur)?),
            "auth_refused" => refused = Some(read_str(cur)?),
            other => return Err(format!("unexpected key {other:?}")),
        }
    }
    if !cur.is_empty() {
        return Err("trailing bytes".into());
    }
    match (scheme, nonce, proof, refused) {
        (Some(scheme), Some(nonce), None, None) if scheme == AUTH_SCHEME => {
            Ok(AuthMsg::Challenge(nonce))
        }
        (Some(scheme), _, None, None) => Err(format!(
            "unsupported authentication scheme {scheme:?} (this side speaks {AUTH_SCHEME:?})"
        )),
        (None, None, Some(proof), None) => Ok(AuthMsg::Proof(proof)),
        (None, None, None, Some(reason)) => Ok(AuthMsg::Refused(reason)),
        _ => Err("not an authentication message".into()),
    }
}

/// The most bytes a string or binary field of an authentication message may hold.
const MAX_FIELD: usize = 256;

fn read_str(cur: &mut &[u8]) -> Result<String, String> {
    let len = rmp::decode::read_str_len(cur).map_err(|_| "expected a string".to_string())? as usize;
    let bytes = take(cur, len)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
}

fn read_bin(cur: &mut &[u8]) -> Result<Vec<u8>, String> {
    let len = rmp::decode::read_bin_len(cur).map_err(|_| "expected bytes".to_string())? as usize;
    Ok(take(cur, len)?.to_vec())
}

fn take<'a>(cur: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if len > MAX_FIELD || len > cur.len() {
        return Err("a field is too long or truncated".into());
    }
    let (head, rest) = cur.split_at(len);
    *cur = rest;
    Ok(head)
}

/// Runs the exchange described in the module docs on a fresh connection.
pub(crate) async fn authenticate(
    secret: &Secret,
    role: Role,
    binding: &str,
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
    write: &mut WriteHalf,
) -> Result<(), AuthError> {
    let ours = nonce()?;
    send(
        write,
        frame(&[
            ("auth", Entry::Str(AUTH_SCHEME)),
            ("nonce", Entry::Bin(&ours)),
        ]),
    )
    .await?;
    let first = next_frame(frames).await?.ok_or(AuthError::PeerClosed)?;
    let theirs = match parse(&first) {
        Ok(AuthMsg::Challenge(nonce)) if nonce.len() == NONCE_LEN => nonce,
        Ok(AuthMsg::Challenge(_)) => {
            return Err(AuthError::Malformed(format!(
                "a nonce must have {NONCE_LEN} bytes"
            )));
        }
        Ok(AuthMsg::Refused(reason)) => return Err(AuthError::Refused(reason)),
        Ok(AuthMsg::Proof(_)) => {
            return Err(AuthError::Malformed("a proof before any challenge".into()));
        }
        // The peer sent its uid straight away: it does not authenticate (a tractor 0.1.0a5
        // peer, or one of ours not given the secret).
        Err(_) => {
            return Err(match Msg::decode_handshake(first) {
                Ok(uid) => AuthError::PeerDidNotAuthenticate {
                    peer: uid.to_string(),
                },
                Err(_) => {
                    AuthError::Malformed("the first frame is neither a challenge nor a uid".into())
                }
            });
        }
    };
    match role {
        Role::Connecting => {
            let proof = secret
                .proof(CONNECTING_LABEL, &theirs, &ours, binding)
                .finalize();
            send(
                write,
                frame(&[("auth_proof", Entry::Bin(&proof.into_bytes()))]),
            )
            .await?;
            let reply = next_frame(frames).await?.ok_or(AuthError::PeerClosed)?;
            match parse(&reply).map_err(AuthError::Malformed)? {
                AuthMsg::Proof(proof) => secret
                    .proof(ACCEPTING_LABEL, &ours, &theirs, binding)
                    .verify_slice(&proof)
                    .map_err(|_| AuthError::WrongSecret),
                AuthMsg::Refused(reason) => Err(AuthError::Refused(reason)),
                AuthMsg::Challenge(_) => Err(AuthError::Malformed("a second challenge".into())),
            }
        }
        Role::Accepting => {
            let reply = next_frame(frames).await?.ok_or(AuthError::PeerClosed)?;
            let proof = match parse(&reply).map_err(AuthError::Malformed)? {
                AuthMsg::Proof(proof) => proof,
                AuthMsg::Refused(reason) => return Err(AuthError::Refused(reason)),
                AuthMsg::Challenge(_) => {
                    return Err(AuthError::Malformed("a second challenge".into()));
                }
            };
            if secret
                .proof(CONNECTING_LABEL, &ours, &theirs, binding)
                .verify_slice(&proof)
                .is_err()
            {
                // Tell the peer why before closing; it may already be gone.
                let _ = send(
                    write,
                    frame(&[(
                        "auth_refused",
                        Entry::Str("wrong secret: the proof does not match this actor's secret"),
                    )]),
                )
                .await;
                return Err(AuthError::WrongSecret);
            }
            let proof = secret
                .proof(ACCEPTING_LABEL, &theirs, &ours, binding)
                .finalize();
            send(
                write,
                frame(&[("auth_proof", Entry::Bin(&proof.into_bytes()))]),
            )
            .await
        }
    }
}

/// The next frame body; `None` when the peer closed.
async fn next_frame(
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
) -> Result<Option<Bytes>, AuthError> {
    match frames.next().await {
        None => Ok(None),
        Some(Ok(body)) => Ok(Some(body)),
        Some(Err(crate::error::FrameError::Io(e))) if crate::channel::is_disconnect(&e) => Ok(None),
        Some(Err(e)) => Err(AuthError::Frame(e)),
    }
}

/// Writes one complete frame.
async fn send(write: &mut WriteHalf, frame: Bytes) -> Result<(), AuthError> {
    write.write_all(&frame).await.map_err(|e| {
        if crate::channel::is_disconnect(&e) {
            AuthError::PeerClosed
        } else {
            AuthError::Io(e)
        }
    })
}
