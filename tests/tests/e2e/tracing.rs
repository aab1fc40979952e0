use aegis_tests::world::incident;
use aegis_tests::TestApp;
use std::time::{Duration, Instant};

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test]
async fn one_trace_spans_the_request_the_append_and_the_projector() {
    let (url, got) = aegis_tests::world::trace_collector().await;
    aegis_runtime::telemetry::init(Some(&url));
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let trace_hex = "0af7651916cd43dd8448eb211c80319c";
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let r = app
        .internal(reqwest::Method::POST, "/incidents", tenant)
        .header("traceparent", format!("00-{trace_hex}-b7ad6b7169203331-01"))
        .json(&incident("traced", "high"))
        .send()
        .await
        .unwrap();
    let pos = aegis_tests::world::position(&r).unwrap();
    app.admin(reqwest::Method::GET, "/incidents", Some(tenant))
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        aegis_runtime::telemetry::flush();
        let exports = got.lock().unwrap().clone();
        let all: Vec<u8> = exports.iter().flat_map(|(_, b)| b.to_vec()).collect();
        // The HTTP span, the append span and the projector's span all carry the caller's trace.
        if count(&all, &trace_id) >= 3 && count(&all, b"project") >= 1 {
            assert!(
                exports.iter().all(|(ct, _)| ct == "application/x-protobuf"),
                "OTLP/HTTP protobuf"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "trace not exported: {} exports, {} hits",
            exports.len(),
            count(&all, &trace_id)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
