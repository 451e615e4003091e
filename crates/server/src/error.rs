//! API errors: a status and `{"error": {"code", "message"}}`, and how each
//! part's errors map to them.

use super::*;

/// An API error: an HTTP status and a JSON body `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine code, e.g. `not_media`.
    pub code: String,
    /// A sentence saying what to fix.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub(crate) fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what}"))
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<RemoteError> for ApiError {
    fn from(e: RemoteError) -> ApiError {
        tracing::error!(error = %e, "object store");
        ApiError::new(StatusCode::BAD_GATEWAY, "storage_unavailable", e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        let status = match &e {
            IngestError::Options(_) | IngestError::Subtitles { .. } => StatusCode::BAD_REQUEST,
            _ if e.is_client_error() => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<babelcast_jobs::DbError> for ApiError {
    fn from(e: babelcast_jobs::DbError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<babelcast_pipeline::ReviewError> for ApiError {
    fn from(e: babelcast_pipeline::ReviewError) -> ApiError {
        use babelcast_pipeline::ReviewError as R;
        let status = match &e {
            R::NoVideo => StatusCode::NOT_FOUND,
            R::NoTranscript | R::NoTranslation(_) | R::NotAwaitingReview(_) => StatusCode::CONFLICT,
            R::BadCues(_) => StatusCode::BAD_REQUEST,
            R::Io(_) | R::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<babelcast_pipeline::DeleteError> for ApiError {
    fn from(e: babelcast_pipeline::DeleteError) -> ApiError {
        tracing::error!(error = %e, "delete");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.code(),
            format!("{e} (the video's record is gone; delete it again to remove the rest)"),
        )
    }
}
