//! `actor trace DIR`: the spans a tree recorded in `ACTOR_TRACE_DIR` (one JSON-lines file per
//! process), drawn as one tree per trace: which actor served which call, under which caller,
//! for how long.

use std::collections::BTreeMap;

use crate::Failure;

/// One recorded span, as the runtime writes it.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    pid: u64,
    service: String,
    start: u64,
    end: u64,
    attributes: serde_json::Map<String, serde_json::Value>,
}

impl Span {
    fn from_json(value: &serde_json::Value) -> Option<Self> {
        let text = |key: &str| value.get(key)?.as_str().map(str::to_owned);
        Some(Self {
            name: text("name")?,
            trace_id: text("trace_id")?,
            span_id: text("span_id")?,
            parent_span_id: text("parent_span_id").unwrap_or_default(),
            pid: value.get("pid").and_then(serde_json::Value::as_u64)?,
            service: text("service").unwrap_or_else(|| "?".into()),
            start: value
                .get("start_unix_nano")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            end: value
                .get("end_unix_nano")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            attributes: value
                .get("attributes")
                .and_then(serde_json::Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(serde_json::Value::as_str)
    }

    /// `actor.call tree.square` for a served call; the span's name otherwise.
    fn title(&self) -> String {
        match (self.attribute("ns"), self.attribute("func")) {
            (Some(ns), Some(func)) => format!("{} {ns}.{func}", self.name),
            _ => self.name.clone(),
        }
    }

    fn duration_text(&self) -> String {
        let nanos = self.end.saturating_sub(self.start);
        match nanos {
            n if n >= 1_000_000_000 => format!("{:.2} s", n as f64 / 1e9),
            n if n >= 1_000_000 => format!("{:.1} ms", n as f64 / 1e6),
            n => format!("{:.0} µs", n as f64 / 1e3),
        }
    }
}

/// Reads every `*.jsonl` file in `dir`; lines that are not spans are counted, not fatal.
fn read_spans(dir: &std::path::Path) -> Result<(Vec<Span>, usize), Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Failure::Failed(format!(
            "cannot read the trace directory {}: {e}\n  run the tree with ACTOR_TRACE_DIR={} \
             (built with the runtime's `otel` feature) first",
            dir.display(),
            dir.display()
        ))
    })?;
    let (mut spans, mut unreadable) = (Vec::new(), 0);
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::Failed(format!("cannot read {}: {e}", path.display())))?;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match serde_json::from_str(line)
                .ok()
                .as_ref()
                .and_then(Span::from_json)
            {
                Some(span) => spans.push(span),
                None => unreadable += 1,
            }
        }
    }
    Ok((spans, unreadable))
}

/// Prints the traces recorded in `dir` (only `only`, a trace id or its prefix, when given).
pub(crate) fn trace(json: bool, dir: &std::path::Path, only: Option<&str>) -> Result<(), Failure> {
    let (spans, unreadable) = read_spans(dir)?;
    if unreadable > 0 {
        eprintln!(
            "actor: {unreadable} lines in {} are not spans",
            dir.display()
        );
    }
    let mut traces: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
    for span in spans
        .iter()
        .filter(|s| only.is_none_or(|id| s.trace_id.starts_with(id)))
    {
        traces.entry(&span.trace_id).or_default().push(span);
    }
    if traces.is_empty() {
        return Err(Failure::NotFound(match only {
            Some(id) => format!("no trace {id} in {}", dir.display()),
            None => format!(
                "no spans in {}: was the tree built with the `otel` feature and run with \
                 ACTOR_TRACE_DIR={}?",
                dir.display(),
                dir.display()
            ),
        }));
    }
    // The earliest trace first.
    let mut ordered: Vec<(&str, Vec<&Span>)> = traces.into_iter().collect();
    ordered.sort_by_key(|(_, spans)| spans.iter().map(|s| s.start).min().unwrap_or(0));
    for (trace_id, mut spans) in ordered {
        spans.sort_by_key(|s| s.start);
        let ids: std::collections::HashSet<&str> =
            spans.iter().map(|s| s.span_id.as_str()).collect();
        // Roots: spans whose parent is not recorded here (a caller outside the tree, or none).
        let roots: Vec<&Span> = spans
            .iter()
            .copied()
            .filter(|s| !ids.contains(s.parent_span_id.as_str()))
            .collect();
        let mut drawn: std::collections::HashSet<*const Span> =
            roots.iter().map(|root| *root as *const Span).collect();
        if json {
            let tree: Vec<serde_json::Value> = roots
                .iter()
                .map(|root| to_json(root, &spans, &mut drawn))
                .collect();
            println!(
                "{}",
                serde_json::json!({ "trace_id": trace_id, "spans": tree })
            );
            continue;
        }
        let processes: std::collections::HashSet<u64> = spans.iter().map(|s| s.pid).collect();
        println!(
            "trace {trace_id}  ({} spans, {} processes)",
            spans.len(),
            processes.len()
        );
        for (i, root) in roots.iter().enumerate() {
            draw(root, &spans, "", i + 1 == roots.len(), true, &mut drawn);
        }
        println!();
    }
    Ok(())
}

/// The spans recorded under `parent`. A span is drawn once: with ids repeated or looping
/// (files from several runs, or written by something else), each is drawn under the first
/// parent that claims it, and a loop ends.
fn children<'a>(
    parent: &Span,
    spans: &[&'a Span],
    drawn: &mut std::collections::HashSet<*const Span>,
) -> Vec<&'a Span> {
    spans
        .iter()
        .copied()
        .filter(|s| s.parent_span_id == parent.span_id && drawn.insert(*s as *const Span))
        .collect()
}

fn line(span: &Span) -> String {
    let cid = span
        .attribute("cid")
        .map(|cid| format!("  cid {cid}"))
        .unwrap_or_default();
    let error = span
        .attribute("error")
        .map(|error| format!("  ERROR {error}"))
        .unwrap_or_default();
    format!(
        "{}  [{} pid {}]  {}{cid}{error}",
        span.title(),
        span.service,
        span.pid,
        span.duration_text()
    )
}

fn draw(
    span: &Span,
    spans: &[&Span],
    prefix: &str,
    last: bool,
    top: bool,
    drawn: &mut std::collections::HashSet<*const Span>,
) {
    if top {
        println!("{}", line(span));
    } else {
        let branch = if last { "└── " } else { "├── " };
        println!("{prefix}{branch}{}", line(span));
    }
    let inner = if top {
        String::new()
    } else if last {
        format!("{prefix}    ")
    } else {
        format!("{prefix}│   ")
    };
    let below = children(span, spans, drawn);
    for (i, child) in below.iter().enumerate() {
        draw(child, spans, &inner, i + 1 == below.len(), false, drawn);
    }
}

fn to_json(
    span: &Span,
    spans: &[&Span],
    drawn: &mut std::collections::HashSet<*const Span>,
) -> serde_json::Value {
    serde_json::json!({
        "name": span.name,
        "span_id": span.span_id,
        "service": span.service,
        "pid": span.pid,
        "start_unix_nano": span.start,
        "end_unix_nano": span.end,
        "attributes": span.attributes,
        "children": children(span, spans, drawn)
            .iter()
            .map(|child| to_json(child, spans, drawn))
            .collect::<Vec<_>>(),
    })
}
