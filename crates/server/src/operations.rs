//! Operations: Prometheus metrics, the health check, the OpenAPI description.

use super::*;

/// Prometheus metrics: jobs by stage and state, stage durations.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct JobLabels {
        stage: String,
        state: String,
    }
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct StageLabels {
        stage: String,
    }
    let db = state.pipeline.db();
    let mut registry = Registry::with_prefix("babelcast");
    let jobs = Family::<JobLabels, Gauge>::default();
    for (stage, job_state, n) in db.job_counts().await? {
        jobs.get_or_create(&JobLabels { stage, state: job_state.as_str().to_owned() }).set(n);
    }
    registry.register("jobs", "Stage jobs by stage and state", jobs);
    let seconds = Family::<StageLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let count = Family::<StageLabels, Gauge>::default();
    for (stage, n, total_ms) in db.stage_durations().await? {
        seconds.get_or_create(&StageLabels { stage: stage.clone() }).set(total_ms as f64 / 1000.0);
        count.get_or_create(&StageLabels { stage }).set(n);
    }
    registry.register("stage_duration_seconds_sum", "Total seconds spent in finished stage jobs", seconds);
    registry.register("stage_duration_count", "Finished stage jobs", count);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

pub(crate) async fn openapi_json() -> impl IntoResponse {
    Json(openapi())
}

/// Liveness: the server answers and its database does.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
pub(crate) async fn health(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.pipeline.db().job_counts().await?;
    Ok("ok")
}
