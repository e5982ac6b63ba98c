//! Following one request across processes.
//!
//! Every call an actor serves runs in a `tracing` span named `actor.call`, with fields
//! `actor`, `ns`, `func` and `cid`. With the `otel` feature, a caller sends its current span's
//! OpenTelemetry context with each `cmd` (the optional `trace` key, a W3C `traceparent`), and
//! the serving span takes it as its parent: one request is one trace across processes.
//!
//! With the feature, [`TRACE_DIR_ENV`] (a directory) makes every actor of the program,
//! and its children, record its finished spans there as JSON lines, one file per process:
//! the simplest exporter, for tests and for reading a trace without a collector. A program
//! that exports elsewhere (OTLP) installs its own `tracing-opentelemetry` layer.

/// A directory where each actor process writes its finished spans, one JSON object per line,
/// in `<pid>.jsonl` (with the `otel` feature).
pub const TRACE_DIR_ENV: &str = "ACTOR_TRACE_DIR";

/// The span serving one call, child of the caller's span when `trace` carries its context.
pub(crate) fn serving_span(
    actor: &actor_ipc::Uid,
    ns: &str,
    func: &str,
    cid: &str,
    trace: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!("actor.call", actor = %actor, ns, func, cid);
    #[cfg(feature = "otel")]
    if let Some(parent) = trace.and_then(otel::parse_traceparent) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(parent);
    }
    #[cfg(not(feature = "otel"))]
    let _ = trace;
    span
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

/// The `tracing` layer recording spans for OpenTelemetry, when [`TRACE_DIR_ENV`] asks
/// for it (with the `otel` feature); `None` otherwise.
#[cfg(feature = "otel")]
pub(crate) fn layer_from_env<S>() -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    otel::layer_from_env()
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

    /// Writes finished spans as JSON lines to one file.
    #[derive(Debug)]
    struct JsonLines(Mutex<std::fs::File>);

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
                    "attributes": attributes,
                });
                text.push_str(&line.to_string());
                text.push('\n');
            }
            let written = crate::base::lock(&self.0).write_all(text.as_bytes());
            std::future::ready(written.map_err(|e| {
                opentelemetry_sdk::error::OTelSdkError::InternalFailure(e.to_string())
            }))
        }
    }

    pub(super) fn layer_from_env<S>() -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        let dir = std::env::var_os(super::TRACE_DIR_ENV)?;
        let path = std::path::Path::new(&dir).join(format!("{}.jsonl", std::process::id()));
        let file = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) => {
                eprintln!("cannot record spans in {}: {e}", path.display());
                return None;
            }
        };
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(JsonLines(Mutex::new(file)))
            .build();
        let tracer = provider.tracer("actor");
        Some(Box::new(tracing_opentelemetry::layer().with_tracer(tracer)))
    }
}
