//! OpenTelemetry trace export (cargo feature `otel`; without it none of this compiles in).
//!
//! When `OTEL_EXPORTER_OTLP_ENDPOINT` is set (for example `http://localhost:4318`), [`layer`]
//! returns a `tracing` layer that sends every span — one per HTTP request, plus the spans
//! of the ports underneath — to that OTLP collector over HTTP/protobuf, with
//! `service.name` `idp-server`. The standard `OTEL_*` variables the OpenTelemetry SDK reads
//! (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` …) apply as usual. Spans are batched on a
//! background thread; call [`OtelGuard::shutdown`] before the process exits so the last
//! batch is sent.
//!
//! ```text
//! cargo run -p idp-examples --features otel --bin idp-server
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 target/debug/idp-server
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// The environment variable that turns the export on.
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The `service.name` the spans carry.
pub const SERVICE_NAME: &str = "idp-server";

/// Keeps the exporter alive; [`OtelGuard::shutdown`] flushes and stops it.
///
/// ```no_run
/// # fn demo() -> idp_core::Result<()> {
/// use tracing_subscriber::layer::SubscriberExt as _;
/// use tracing_subscriber::util::SubscriberInitExt as _;
/// let (otel, guard) = match idp_examples::server::otel::layer()? {
///     Some((layer, guard)) => (Some(layer), Some(guard)),
///     None => (None, None),
/// };
/// tracing_subscriber::registry().with(otel).init();
/// // ... run ...
/// if let Some(guard) = guard {
///     guard.shutdown()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
    endpoint: String,
}

impl OtelGuard {
    /// Where the spans go.
    ///
    /// ```no_run
    /// # fn demo(guard: idp_examples::server::otel::OtelGuard) {
    /// println!("exporting traces to {}", guard.endpoint());
    /// # }
    /// ```
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Send what is still buffered and stop the exporter.
    ///
    /// ```no_run
    /// # fn demo(guard: idp_examples::server::otel::OtelGuard) -> idp_core::Result<()> {
    /// guard.shutdown()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The collector could not be reached while flushing (the spans are lost; the
    /// server's own work is not affected).
    pub fn shutdown(self) -> idp_core::Result<()> {
        let flushed = self.provider.force_flush();
        let stopped = self.provider.shutdown();
        flushed.and(stopped).map_err(|e| {
            idp_core::Error::unavailable(format!(
                "could not flush the last traces to the OTLP collector at {}",
                self.endpoint
            ))
            .with_source(e)
        })
    }
}

/// A `tracing` layer exporting spans over OTLP, and its guard — or `None` when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is unset or empty.
///
/// ```no_run
/// # fn demo() -> idp_core::Result<()> {
/// # type S = tracing_subscriber::Registry;
/// if let Some((_layer, guard)) = idp_examples::server::otel::layer::<S>()? {
///     println!("exporting to {}", guard.endpoint());
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
/// The exporter cannot be built (an unusable endpoint or `OTEL_*` setting); the message
/// names the variable.
pub fn layer<S>() -> idp_core::Result<Option<(OpenTelemetryLayer<S, SdkTracer>, OtelGuard)>>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let Some(endpoint) = std::env::var(ENDPOINT_VAR)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    // The exporter reads the endpoint (and the other OTEL_EXPORTER_OTLP_* settings) from
    // the environment itself, appending /v1/traces.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| {
            idp_core::Error::invalid_input(format!(
                "cannot export traces to {ENDPOINT_VAR}={endpoint}: check the URL (for example http://localhost:4318) and the other OTEL_EXPORTER_OTLP_* variables"
            ))
            .with_source(e)
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
        .build();
    let tracer = provider.tracer(SERVICE_NAME);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, OtelGuard { provider, endpoint })))
}
