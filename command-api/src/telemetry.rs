//! Telemetry, set up once: `tracing` with an OpenTelemetry layer, and W3C trace context that
//! travels HTTP → NATS headers → projectors and reactors, so one trace follows a command from
//! the request to its read model.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (tests do); later calls are no-ops.
pub fn init() {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("aegis");
    opentelemetry::global::set_tracer_provider(provider);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn,sqlx=warn"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
}
