//! One request across three processes is one trace: the root's span is the parent of the span
//! serving its call in child `a`, whose span is the parent of the span serving `a`'s call in
//! grandchild `b` (the `otel` feature, W3C trace context in `cmd`'s `trace` key). Each process
//! records its finished spans in `ACTOR_TRACE_DIR` (one JSON-lines file per process); the test
//! reads them all back.
//!
//! The same tree exports its spans over OTLP/HTTP to a collector (the `otlp` feature,
//! `OTEL_EXPORTER_OTLP_ENDPOINT`): here a receiver in the test, on a loopback socket, that
//! decodes the protobuf export requests.
//!
//! The tree test proper is `#[ignore]`d: the two tests re-run this binary on it with the
//! variables set (the recording layer is installed when each actor process starts).

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tracing::Instrument;

mod traced {
    /// Calls `b` (a child of this actor) and returns its answer plus one.
    #[actor::remote(ns = "traced")]
    pub(crate) async fn relay() -> actor::Result<u64> {
        let nursery = actor::open_nursery().await?;
        let b = nursery.start_actor("b").enable("traced").await?;
        let answer = b.run(leaf {}).await?;
        nursery.close().await?;
        Ok(answer + 1)
    }

    /// 41.
    #[actor::remote(ns = "traced")]
    pub(crate) async fn leaf() -> u64 {
        41
    }
}

use traced::*;

#[actor::test]
#[ignore = "run by one_call_is_one_trace_across_three_processes, with ACTOR_TRACE_DIR set"]
async fn traced_tree() -> actor::Result<()> {
    assert!(
        std::env::var_os(actor::TRACE_DIR_ENV).is_some()
            || std::env::var_os(actor::OTLP_ENDPOINT_ENV).is_some(),
        "run this through one_call_is_one_trace_across_three_processes"
    );
    let nursery = actor::open_nursery().await?;
    let a = nursery.start_actor("a").enable("traced").await?;
    let answer = a
        .run(relay {})
        .instrument(tracing::info_span!("client-request"))
        .await?;
    assert_eq!(answer, 42);
    nursery.close().await?;
    Ok(())
}

/// One finished span, as a process recorded or exported it.
#[derive(Debug, Clone)]
struct Recorded {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    /// The recording process.
    pid: u64,
    attributes: std::collections::BTreeMap<String, String>,
}

#[test]
fn one_call_is_one_trace_across_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    actor_tests::run_ignored_test_with_env(
        "traced_tree",
        &[(actor::TRACE_DIR_ENV, dir.path().as_os_str())],
        Duration::from_secs(60),
    );
    let mut spans = Vec::new();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for line in text.lines() {
            let span: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = |key: &str| span[key].as_str().unwrap().to_owned();
            spans.push(Recorded {
                name: text("name"),
                trace_id: text("trace_id"),
                span_id: text("span_id"),
                parent_span_id: text("parent_span_id"),
                pid: span["pid"].as_u64().unwrap(),
                attributes: span["attributes"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect(),
            });
        }
    }
    assert_one_trace(&spans);
}

#[test]
fn one_call_is_one_trace_in_an_otlp_collector() {
    let collector = otlp::Receiver::start();
    let endpoint = format!("http://{}", collector.addr);
    actor_tests::run_ignored_test_with_env(
        "traced_tree",
        &[(actor::OTLP_ENDPOINT_ENV, endpoint.as_ref())],
        Duration::from_secs(60),
    );
    // Each process flushed its last batch before it exited.
    let exported = collector.spans();
    assert_one_trace(&exported);
    // Each process is its own service, named after its actor.
    let services = |name: &str, func: Option<&str>| {
        exported
            .iter()
            .find(|s| s.name == name && func.is_none_or(|f| s.attributes["func"] == f))
            .map(|s| s.attributes["service.name"].clone())
    };
    assert_eq!(
        [
            services("client-request", None),
            services("actor.call", Some("relay")),
            services("actor.call", Some("leaf"))
        ],
        [
            Some("traced_tree".to_owned()),
            Some("a".to_owned()),
            Some("b".to_owned())
        ]
    );
}

/// The root's span, `a`'s serving span and `b`'s serving span are in three processes, one
/// trace, each the parent of the next.
fn assert_one_trace(spans: &[Recorded]) {
    let find = |name: &str, func: Option<&str>| {
        spans
            .iter()
            .find(|s| {
                s.name == name
                    && func.is_none_or(|f| s.attributes.get("func").map(String::as_str) == Some(f))
            })
            .unwrap_or_else(|| panic!("no span {name} {func:?} among {spans:#?}"))
            .clone()
    };
    let root = find("client-request", None);
    let in_a = find("actor.call", Some("relay"));
    let in_b = find("actor.call", Some("leaf"));
    // Three processes...
    let pids = [&root, &in_a, &in_b].map(|s| s.pid);
    assert!(
        pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2],
        "{pids:?}"
    );
    // ...one trace, each serving span the child of its caller's span.
    assert_eq!(in_a.trace_id, root.trace_id, "{in_a:?} vs {root:?}");
    assert_eq!(in_b.trace_id, root.trace_id, "{in_b:?} vs {root:?}");
    assert_eq!(in_a.parent_span_id, root.span_id, "{in_a:?} vs {root:?}");
    assert_eq!(in_b.parent_span_id, in_a.span_id, "{in_b:?} vs {in_a:?}");
    // The serving spans name their actor, namespace, function and call id.
    for (span, actor) in [(&in_a, "a["), (&in_b, "b[")] {
        assert!(span.attributes["actor"].starts_with(actor), "{span:?}");
        assert_eq!(span.attributes["ns"], "traced", "{span:?}");
        assert!(!span.attributes["cid"].is_empty(), "{span:?}");
    }
}

/// A minimal OTLP/HTTP trace receiver: HTTP/1.1 `POST /v1/traces` with protobuf bodies,
/// answered `200` with an empty export response.
mod otlp {
    use std::{
        collections::BTreeMap,
        io::{BufRead, BufReader, Read, Write},
        net::{SocketAddr, TcpListener, TcpStream},
        sync::{Arc, Mutex},
    };

    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{AnyValue, KeyValue, any_value},
    };
    use prost::Message;

    use super::Recorded;

    pub(super) struct Receiver {
        pub(super) addr: SocketAddr,
        spans: Arc<Mutex<Vec<Recorded>>>,
    }

    impl Receiver {
        pub(super) fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let spans = Arc::new(Mutex::new(Vec::new()));
            let sink = spans.clone();
            // Lives as long as the test process; each connection on its own thread.
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let sink = sink.clone();
                    std::thread::spawn(move || serve(stream, &sink));
                }
            });
            Self { addr, spans }
        }

        /// Every span received so far.
        pub(super) fn spans(&self) -> Vec<Recorded> {
            self.spans.lock().unwrap().clone()
        }
    }

    /// Serves one keep-alive connection's requests until it closes.
    fn serve(stream: TcpStream, sink: &Mutex<Vec<Recorded>>) {
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let mut length = 0usize;
            let mut content_type = String::new();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (key, value) = header.split_once(':').unwrap();
                match key.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "content-type" => value.trim().clone_into(&mut content_type),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            assert!(
                request_line.starts_with("POST /v1/traces "),
                "{request_line}"
            );
            assert_eq!(content_type, "application/x-protobuf");
            let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            sink.lock().unwrap().extend(records(request));
            writer
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                )
                .unwrap();
        }
    }

    fn records(request: ExportTraceServiceRequest) -> Vec<Recorded> {
        let mut out = Vec::new();
        for resource_spans in request.resource_spans {
            let resource = attributes(
                &resource_spans
                    .resource
                    .map(|r| r.attributes)
                    .unwrap_or_default(),
            );
            let pid = resource["process.pid"].parse().unwrap();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                let mut attributes = attributes(&span.attributes);
                attributes.insert("service.name".into(), resource["service.name"].clone());
                out.push(Recorded {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    pid,
                    attributes,
                });
            }
        }
        out
    }

    fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|kv| {
                let value = match kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    Some(any_value::Value::IntValue(i)) => i.to_string(),
                    other => format!("{other:?}"),
                };
                (kv.key.clone(), value)
            })
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
