//! Telemetry, set up once: `tracing` with an OpenTelemetry layer, and W3C trace context that
//! travels HTTP → NATS headers → projectors and reactors (see `aegis_streams::trace`), so one
//! trace follows a command from the request to its read model. With an OTLP endpoint the
//! spans are exported over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

fn provider(otlp_endpoint: Option<&str>) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("aegis").build());
    let Some(endpoint) = otlp_endpoint else {
        return builder.build();
    };
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    // The blocking HTTP client must not be built inside an async runtime: build it on a
    // thread of its own. The batch processor then exports from its own thread.
    let exporter = std::thread::spawn(move || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
    })
    .join()
    .map_err(|_| "the exporter thread panicked".to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    match exporter {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(e) => {
            eprintln!("aegis: OTLP export disabled: {e}");
            builder.build()
        }
    }
}

/// Installs the global subscriber once; later calls are no-ops (tests call it often).
pub fn init(otlp_endpoint: Option<&str>) {
    let mut first = false;
    let provider = PROVIDER.get_or_init(|| {
        first = true;
        provider(otlp_endpoint)
    });
    if !first {
        return;
    }
    opentelemetry::global::set_tracer_provider(provider.clone());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn,sqlx=warn"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("aegis")))
        .try_init();
}

/// Exports what is buffered; call before the process exits.
pub fn flush() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
    }
}
