//! Where actors listen: TCP and Unix-domain sockets, written as URLs
//! (`tcp://127.0.0.1:1616`, `unix:///run/actor/a.sock`), and their wire form.
//!
//! On the wire tractor 0.1.0a5 knows only TCP and writes an address as `[host, port]`. A Unix
//! socket is written in the same two-element shape as `["unix:///path/to.sock", 0]`: the host
//! slot carries the socket's URL and the port is 0. A 0.1.0a5 peer given such an address fails
//! to resolve the host (a clean error, never a crash); a peer of this runtime recognises the
//! `unix://` prefix, which no DNS name can start with. See `docs/protocol-notes.md`.

use std::{fmt, path::PathBuf, str::FromStr};

use rmpv::Value;

/// The scheme prefix of a TCP address URL.
pub const TCP_SCHEME: &str = "tcp://";
/// The scheme prefix of a Unix-socket address URL (and of the host slot of its wire form).
pub const UNIX_SCHEME: &str = "unix://";

/// An address an actor listens on or connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A TCP endpoint. `host` is an IP address or a name; port 0 asks the OS for a free port
    /// when binding.
    Tcp {
        /// IP address or host name, without brackets for IPv6.
        host: String,
        /// Port number.
        port: u16,
    },
    /// A Unix-domain stream socket at a filesystem path.
    Unix(PathBuf),
}

/// Why a string is not an address URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrParseError {
    /// The string has no `scheme://` prefix.
    #[error("{0:?} is not an address URL (expected tcp://HOST:PORT or unix:///PATH)")]
    MissingScheme(String),
    /// The scheme is neither `tcp` nor `unix`.
    #[error("unknown address scheme {0:?} (expected tcp or unix)")]
    UnknownScheme(String),
    /// A TCP URL without a `:PORT`.
    #[error("{0:?} has no port (expected tcp://HOST:PORT)")]
    MissingPort(String),
    /// The port is not a number from 0 to 65535.
    #[error("{0:?} has an invalid port")]
    InvalidPort(String),
    /// A TCP URL with an empty host.
    #[error("{0:?} has an empty host")]
    EmptyHost(String),
    /// A Unix URL with an empty path.
    #[error("{0:?} has an empty socket path")]
    EmptyPath(String),
}

impl Addr {
    /// A TCP address.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::Tcp {
            host: host.into(),
            port,
        }
    }

    /// A Unix-socket address.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::Unix(path.into())
    }

    /// The `[host, port]` form this address takes in protocol messages.
    pub fn to_wire(&self) -> WireAddr {
        match self {
            Self::Tcp { host, port } => WireAddr {
                host: host.clone(),
                port: *port,
            },
            Self::Unix(path) => WireAddr {
                host: format!("{UNIX_SCHEME}{}", path.display()),
                port: 0,
            },
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } if host.contains(':') => {
                write!(f, "{TCP_SCHEME}[{host}]:{port}")
            }
            Self::Tcp { host, port } => write!(f, "{TCP_SCHEME}{host}:{port}"),
            Self::Unix(path) => write!(f, "{UNIX_SCHEME}{}", path.display()),
        }
    }
}

impl FromStr for Addr {
    type Err = AddrParseError;

    fn from_str(url: &str) -> Result<Self, AddrParseError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(AddrParseError::MissingScheme(url.to_owned()));
        };
        match scheme {
            "tcp" => {
                let (host, port) = split_host_port(rest)
                    .ok_or_else(|| AddrParseError::MissingPort(url.to_owned()))?;
                if host.is_empty() {
                    return Err(AddrParseError::EmptyHost(url.to_owned()));
                }
                let port = port
                    .parse()
                    .map_err(|_| AddrParseError::InvalidPort(url.to_owned()))?;
                Ok(Self::tcp(host, port))
            }
            "unix" if rest.is_empty() => Err(AddrParseError::EmptyPath(url.to_owned())),
            "unix" => Ok(Self::unix(rest)),
            other => Err(AddrParseError::UnknownScheme(other.to_owned())),
        }
    }
}

/// `host:port` or `[v6]:port` → (host, port text).
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(bracketed) = s.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    s.rsplit_once(':')
}

/// An address as protocol messages carry it: `[host, port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireAddr {
    /// The host slot: an IP address or name, or `unix:///path` for a Unix socket.
    pub host: String,
    /// The port slot (0 for a Unix socket).
    pub port: u16,
}

impl WireAddr {
    /// The address this wire form names.
    pub fn to_addr(&self) -> Addr {
        match self.host.strip_prefix(UNIX_SCHEME) {
            Some(path) => Addr::unix(path),
            None => Addr::tcp(self.host.clone(), self.port),
        }
    }

    /// As a dynamic value: `[host, port]`.
    pub fn to_value(&self) -> Value {
        Value::Array(vec![self.host.as_str().into(), self.port.into()])
    }

    /// From a dynamic `[host, port]` value; `None` if it has another shape.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value.as_array()?.as_slice() {
            [host, port] => Some(Self {
                host: host.as_str()?.to_owned(),
                port: u16::try_from(port.as_u64()?).ok()?,
            }),
            _ => None,
        }
    }
}

impl From<&Addr> for WireAddr {
    fn from(addr: &Addr) -> Self {
        addr.to_wire()
    }
}

impl fmt::Display for WireAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}, {}]", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip() {
        for url in [
            "tcp://127.0.0.1:1616",
            "tcp://localhost:0",
            "tcp://[::1]:8080",
            "unix:///tmp/a.sock",
        ] {
            let addr: Addr = url.parse().unwrap();
            assert_eq!(addr.to_string(), url);
        }
        assert_eq!(
            "tcp://[::1]:8080".parse::<Addr>().unwrap(),
            Addr::tcp("::1", 8080)
        );
    }

    #[test]
    fn bad_urls_say_why() {
        use AddrParseError::*;
        assert!(matches!(
            "127.0.0.1:1".parse::<Addr>(),
            Err(MissingScheme(_))
        ));
        assert!(matches!("udp://h:1".parse::<Addr>(), Err(UnknownScheme(_))));
        assert!(matches!("tcp://host".parse::<Addr>(), Err(MissingPort(_))));
        assert!(matches!(
            "tcp://h:70000".parse::<Addr>(),
            Err(InvalidPort(_))
        ));
        assert!(matches!("tcp://:1".parse::<Addr>(), Err(EmptyHost(_))));
        assert!(matches!("unix://".parse::<Addr>(), Err(EmptyPath(_))));
    }

    #[test]
    fn wire_form_keeps_tcp_as_tractor_writes_it_and_marks_unix() {
        let tcp = Addr::tcp("127.0.0.1", 1616).to_wire();
        assert_eq!(
            tcp.to_value(),
            Value::Array(vec!["127.0.0.1".into(), 1616.into()])
        );
        let unix = Addr::unix("/tmp/a.sock");
        let wire = unix.to_wire();
        assert_eq!((wire.host.as_str(), wire.port), ("unix:///tmp/a.sock", 0));
        assert_eq!(wire.to_addr(), unix);
        assert_eq!(WireAddr::from_value(&wire.to_value()), Some(wire));
    }
}
