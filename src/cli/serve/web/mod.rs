//! The web page at `/` (owned by the web page's own change; until then a placeholder): `index`
//! answers `GET /`, `asset` answers `GET /assets/{file}`. Both are served without a token; the page
//! asks for one and sends it as `Authorization: Bearer` with each API call.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `GET /`: the page.
pub async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], "<!doctype html><title>cairn</title><p>cairn serve</p>\n")
        .into_response()
}

/// `GET /assets/{file}`: a file of the page.
pub async fn asset(Path(file): Path<String>) -> Response {
    super::routes::ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no asset {file:?}")).into_response()
}
