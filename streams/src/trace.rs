//! W3C trace context in NATS headers: the HTTP request's trace continues into the commit's
//! headers and from there into the projector or reactor that handles it.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct PairExtractor<'a>(&'a [(&'static str, String)]);

impl Extractor for PairExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

#[derive(Default)]
struct PairInjector(Vec<(&'static str, String)>);

impl Injector for PairInjector {
    fn set(&mut self, key: &str, value: String) {
        let key = match key {
            "traceparent" => crate::headers::TRACEPARENT,
            "tracestate" => crate::headers::TRACESTATE,
            _ => return,
        };
        self.0.push((key, value));
    }
}

/// Makes `span` a child of the trace context in incoming HTTP headers, if any.
pub fn adopt_http_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(cx);
}

/// Makes `span` a child of a stored `traceparent` (projectors and reactors call this).
pub fn adopt_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(tp) = traceparent {
        let pairs = [(crate::headers::TRACEPARENT, tp.to_string())];
        let cx = TraceContextPropagator::new().extract(&PairExtractor(&pairs));
        let _ = span.set_parent(cx);
    }
}

/// The current span's trace context as NATS header pairs.
pub fn current_trace_headers() -> Vec<(&'static str, String)> {
    let cx = tracing::Span::current().context();
    let mut injector = PairInjector::default();
    TraceContextPropagator::new().inject_context(&cx, &mut injector);
    injector.0
}
