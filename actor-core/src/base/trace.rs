//! Following one request across processes.
//!
//! Every call an actor serves runs in a `tracing` span named `actor.call`, with fields
//! `actor`, `ns`, `func` and `cid`, and `error` (the error's type) when it fails. With the `otel` feature, a caller sends its current span's
//! OpenTelemetry context with each `cmd` (the optional `trace` key, a W3C `traceparent`), and
//! the serving span takes it as its parent: one request is one trace across processes.
//!
//! With the feature, [`TRACE_DIR_ENV`] (a directory) makes every actor of the program,
//! and its children, record its finished spans there as JSON lines, one file per process:
//! the simplest exporter, for tests and for reading a trace without a collector.
//!
//! With the `otlp` feature, [`OTLP_ENDPOINT_ENV`] (OpenTelemetry's own variable, e.g.
//! `http://127.0.0.1:4318`) makes every actor of the tree export its spans to that collector
//! over OTLP/HTTP (protobuf), each process under its actor's name as `service.name`. Spans
//! are sent in batches and flushed when the actor's process ends.

/// A directory where each actor process writes its finished spans, one JSON object per line,
/// in `<pid>.jsonl` (with the `otel` feature): `name`, `trace_id`, `span_id`,
/// `parent_span_id`, `pid`, `service` (the actor's name), `start_unix_nano`, `end_unix_nano`
/// and `attributes`. `actor trace DIR` draws them as trees.
pub const TRACE_DIR_ENV: &str = "ACTOR_TRACE_DIR";

/// The OpenTelemetry collector every actor of the tree exports its spans to, over OTLP/HTTP
/// with protobuf bodies (with the `otlp` feature). The standard variable: `/v1/traces` is
/// appended; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) and `OTEL_EXPORTER_OTLP_HEADERS`
/// are honoured too. Plain `http://` only: the feature carries no TLS stack.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The variables a remote child needs to record spans as its parent does.
pub(crate) const HANDED_ON_TRACE_ENV: [&str; 5] = [
    TRACE_DIR_ENV,
    OTLP_ENDPOINT_ENV,
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_RESOURCE_ATTRIBUTES",
];

/// The span serving one call, child of the caller's span when `trace` carries its context.
pub(crate) fn serving_span(
    actor: &actor_ipc::Uid,
    ns: &str,
    func: &str,
    cid: &str,
    trace: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "actor.call",
        actor = %actor,
        ns,
        func,
        cid,
        error = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    #[cfg(feature = "otel")]
    if let Some(parent) = trace.and_then(otel::parse_traceparent) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(parent);
    }
    #[cfg(not(feature = "otel"))]
    let _ = trace;
    span
}

/// Marks the current span (the `actor.call` serving a call, when it is current) as failed
/// with `type_str`: its `error` field, and OpenTelemetry's error status.
pub(crate) fn record_error(type_str: &str) {
    let span = tracing::Span::current();
    span.record("error", type_str);
    span.record("otel.status_code", "ERROR");
}

/// The current span's context as a W3C `traceparent`, to send with a `cmd` (`None` without
/// the `otel` feature, or outside a recorded span).
pub(crate) fn current_traceparent() -> Option<String> {
    #[cfg(feature = "otel")]
    {
        otel::current_traceparent()
    }
    #[cfg(not(feature = "otel"))]
    {
        None
    }
}

/// The `tracing` layer recording spans for OpenTelemetry, when [`TRACE_DIR_ENV`] or (with the
/// `otlp` feature) [`OTLP_ENDPOINT_ENV`] asks for it (with the `otel` feature); `None`
/// otherwise. `actor` names this process's actor, its `service.name`.
#[cfg(feature = "otel")]
pub(crate) fn layer_from_env<S>(
    actor: &str,
) -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    otel::layer_from_env(actor)
}

/// Sends the spans still buffered to their exporters, bounded; called as the actor's process
/// ends (a batch exporter would otherwise lose its last batch).
pub(crate) fn flush_spans() {
    #[cfg(feature = "otel")]
    otel::flush();
}

#[cfg(feature = "otel")]
mod otel {
    use std::{io::Write, sync::Mutex};

    use opentelemetry::{
        Context,
        trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
        },
    };
    use opentelemetry_sdk::{
        error::OTelSdkResult,
        trace::{SdkTracerProvider, SpanData, SpanExporter},
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    pub(super) fn current_traceparent() -> Option<String> {
        let cx = tracing::Span::current().context();
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            )
        })
    }

    pub(super) fn parse_traceparent(text: &str) -> Option<Context> {
        let mut parts = text.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let context = SpanContext::new(
            TraceId::from_hex(trace).ok()?,
            SpanId::from_hex(span).ok()?,
            TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
            true,
            TraceState::default(),
        );
        context
            .is_valid()
            .then(|| Context::new().with_remote_span_context(context))
    }

    /// Writes finished spans as JSON lines to one file, each naming its process's actor
    /// (`service`, the resource's `service.name`).
    #[derive(Debug)]
    struct JsonLines {
        file: Mutex<std::fs::File>,
        service: String,
    }

    /// Nanoseconds since the Unix epoch (0 before it).
    fn unix_nanos(at: std::time::SystemTime) -> u64 {
        at.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
    }

    impl SpanExporter for JsonLines {
        fn export(
            &self,
            batch: Vec<SpanData>,
        ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            let mut text = String::new();
            for span in batch {
                let attributes: serde_json::Map<String, serde_json::Value> = span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.to_string(), kv.value.to_string().into()))
                    .collect();
                let line = serde_json::json!({
                    "name": span.name,
                    "trace_id": span.span_context.trace_id().to_string(),
                    "span_id": span.span_context.span_id().to_string(),
                    "parent_span_id": span.parent_span_id.to_string(),
                    "pid": std::process::id(),
                    "service": self.service,
                    "start_unix_nano": unix_nanos(span.start_time),
                    "end_unix_nano": unix_nanos(span.end_time),
                    "attributes": attributes,
                });
                text.push_str(&line.to_string());
                text.push('\n');
            }
            let written = crate::base::lock(&self.file).write_all(text.as_bytes());
            std::future::ready(written.map_err(|e| {
                opentelemetry_sdk::error::OTelSdkError::InternalFailure(e.to_string())
            }))
        }
    }

    /// The provider of this process's spans, kept to flush it as the process ends.
    static PROVIDER: std::sync::OnceLock<SdkTracerProvider> = std::sync::OnceLock::new();

    /// The JSON-lines exporter [`super::TRACE_DIR_ENV`] asks for, if it does.
    fn json_lines_from_env(service: &str) -> Option<JsonLines> {
        let dir = std::env::var_os(super::TRACE_DIR_ENV)?;
        let path = std::path::Path::new(&dir).join(format!("{}.jsonl", std::process::id()));
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(file) => Some(JsonLines {
                file: Mutex::new(file),
                service: service.to_owned(),
            }),
            Err(e) => {
                eprintln!("cannot record spans in {}: {e}", path.display());
                None
            }
        }
    }

    /// The OTLP exporter [`super::OTLP_ENDPOINT_ENV`] asks for, if it does.
    #[cfg(feature = "otlp")]
    fn otlp_from_env() -> Option<opentelemetry_otlp::SpanExporter> {
        let asked = [
            super::OTLP_ENDPOINT_ENV,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|key| std::env::var_os(key).is_some_and(|v| !v.is_empty()));
        if !asked {
            return None;
        }
        use opentelemetry_otlp::WithExportConfig;
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
        {
            Ok(exporter) => Some(exporter),
            Err(e) => {
                eprintln!(
                    "cannot export spans over OTLP (from {}): {e}",
                    super::OTLP_ENDPOINT_ENV
                );
                None
            }
        }
    }

    pub(super) fn layer_from_env<S>(
        actor: &str,
    ) -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        let json_lines = json_lines_from_env(actor);
        #[cfg(feature = "otlp")]
        let otlp = otlp_from_env();
        #[cfg(not(feature = "otlp"))]
        let otlp: Option<std::convert::Infallible> = None;
        if json_lines.is_none() && otlp.is_none() {
            return None;
        }
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(actor.to_owned())
            .with_attribute(opentelemetry::KeyValue::new(
                "process.pid",
                i64::from(std::process::id()),
            ))
            .with_attribute(opentelemetry::KeyValue::new(
                "host.name",
                crate::base::platform::hostname().unwrap_or_default(),
            ))
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        if let Some(exporter) = json_lines {
            builder = builder.with_simple_exporter(exporter);
        }
        #[cfg(feature = "otlp")]
        if let Some(exporter) = otlp {
            builder = builder.with_batch_exporter(exporter);
        }
        let provider = builder.build();
        let tracer = provider.tracer("actor");
        let _ = PROVIDER.set(provider);
        Some(Box::new(tracing_opentelemetry::layer().with_tracer(tracer)))
    }

    pub(super) fn flush() {
        if let Some(provider) = PROVIDER.get()
            && let Err(e) = provider.force_flush()
        {
            eprintln!("spans not exported: {e}");
        }
    }
}
