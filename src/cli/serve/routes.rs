//! The API's one route table ([`ROUTES`]: method, path, the role it needs, its handler), the router
//! built from it with the token check in front of every route that needs a role, and the JSON
//! error every failure answers with (docs/api.md "Errors"). The OpenAPI document (docs/openapi.json)
//! lists the same routes; `cairn serve routes` prints the table so a test can hold the two together.

use super::auth::Role;
use super::State;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;

/// The shared server state as handlers take it.
pub type Shared = Arc<State>;

/// One route of the API.
pub struct Route {
    /// `GET` or `POST`.
    pub method: Method,
    /// The path, `{name}` for a path parameter (axum's syntax, and OpenAPI's).
    pub path: &'static str,
    /// The role a token needs; `None`: no token.
    pub role: Option<Role>,
    /// Its handler.
    pub handler: fn() -> MethodRouter<Shared>,
}

/// Every route the server has (docs/api.md, docs/openapi.json).
pub fn routes() -> Vec<Route> {
    use super::{download, jobs, read, web};
    let r = |method: Method, path, role, handler| Route { method, path, role, handler };
    let (g, p) = (Method::GET, Method::POST);
    let (read, operate, admin) = (Some(Role::Read), Some(Role::Operate), Some(Role::Admin));
    vec![
        r(g.clone(), "/health", None, || get(health)),
        r(g.clone(), "/", None, || get(web::index)),
        r(g.clone(), "/assets/{file}", None, || get(web::asset)),
        r(g.clone(), "/api/v1/openapi.json", None, || get(openapi)),
        r(g.clone(), "/metrics", read, || get(read::metrics)),
        r(g.clone(), "/api/v1/repository", read, || get(read::repository)),
        r(g.clone(), "/api/v1/snapshots", read, || get(read::snapshots)),
        r(g.clone(), "/api/v1/snapshots/{id}", read, || get(read::snapshot)),
        r(g.clone(), "/api/v1/snapshots/{id}/ls", read, || get(read::ls)),
        r(g.clone(), "/api/v1/snapshots/{id}/download", read, || get(download::download)),
        r(g.clone(), "/api/v1/diff", read, || get(read::diff)),
        r(g.clone(), "/api/v1/find", read, || get(read::find)),
        r(g.clone(), "/api/v1/stats", read, || get(read::stats)),
        r(g.clone(), "/api/v1/status", read, || get(read::status)),
        r(g.clone(), "/api/v1/ledger", read, || get(read::ledger)),
        r(g.clone(), "/api/v1/jobs", read, || get(jobs::list)),
        r(g.clone(), "/api/v1/jobs/{id}", read, || get(jobs::show)),
        r(p.clone(), "/api/v1/jobs", operate, || post(jobs::start)),
        r(p.clone(), "/api/v1/forget", admin, || post(jobs::forget)),
        r(p, "/api/v1/prune", admin, || post(jobs::prune)),
        r(g, "/api/v1/keys", admin, || get(read::keys)),
    ]
}

/// The router of [`routes`]: each route behind the token check of its role.
pub fn router(state: Shared) -> Router {
    let mut router: Router<Shared> = Router::new();
    for route in routes() {
        let mut m = (route.handler)();
        if let Some(role) = route.role {
            m = m.route_layer(axum::middleware::from_fn_with_state((state.clone(), role), authorize));
        }
        router = router.route(route.path, m);
    }
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(axum::middleware::from_fn(close_if_body_unread))
        .with_state(state)
}

/// Answers with `Connection: close` when the request's body was not read to its end (a token refused,
/// a route that takes no body, a handler that stopped early). hyper then cannot reuse the connection, as
/// the rest of the body would be read as the next request; without the header it closes the connection
/// after the response, and a client that kept it for its next request finds it gone (docs/api.md).
async fn close_if_body_unread(req: Request, next: Next) -> Response {
    use http_body::Body as _;
    let read = Arc::new(std::sync::atomic::AtomicBool::new(req.body().is_end_stream()));
    let req = req.map(|body| axum::body::Body::new(Watched { inner: body, read: read.clone() }));
    let mut resp = next.run(req).await;
    if !read.load(std::sync::atomic::Ordering::Acquire) {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A request body that notes when it has been read to its end (or was empty).
struct Watched {
    inner: axum::body::Body,
    read: Arc<std::sync::atomic::AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || this.inner.is_end_stream() {
            this.read.store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.read.store(true, std::sync::atomic::Ordering::Release);
        }
        end
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `cairn serve routes`: the table as JSON.
pub fn table_json() -> serde_json::Value {
    let rows: Vec<serde_json::Value> = routes()
        .iter()
        .map(|r| serde_json::json!({"method": r.method.as_str(), "path": r.path, "role": r.role}))
        .collect();
    serde_json::Value::Array(rows)
}

/// The token check: 429 while the client's address has used up its failed attempts, 401 without a
/// known token (the attempt counted when a token was given), 403 when its role is below `need`.
async fn authorize(
    axum::extract::State((state, need)): axum::extract::State<(Shared, Role)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let ip = peer.ip();
    if let Some(wait) = state.limiter.blocked(ip) {
        let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many failed token attempts")
            .into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = given.and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))).map(str::trim);
    let found = token.and_then(|t| state.tokens.lookup(t.as_bytes()));
    let Some((role, name)) = found else {
        if given.is_some() {
            state.limiter.fail(ip);
            tracing::warn!("serve: unknown token from {ip}");
        }
        let mut r =
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is needed").into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"cairn\""));
        return r;
    };
    if role < need {
        let msg = format!("token {name:?} has role {}; this needs {}", role.as_str(), need.as_str());
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg).into_response();
    }
    next.run(req).await
}

/// `GET /health`.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The OpenAPI document, as in docs/openapi.json.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// An API error: `{"error": {"code", "message"}}` with its status.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error of `status` with `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    /// 400 `bad_request`.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<cairn::Error> for ApiError {
    fn from(e: cairn::Error) -> Self {
        use cairn::error::ErrorKind as K;
        let (status, code) = match e.kind() {
            K::Usage => (StatusCode::BAD_REQUEST, "bad_request"),
            K::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            K::Locked => (StatusCode::CONFLICT, "locked"),
            K::Key => (StatusCode::FORBIDDEN, "key"),
            K::Corrupt => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<cairn::Error>() {
            Ok(e) => e.into(),
            Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("{e:#}")),
        }
    }
}

/// Runs the blocking `f` (repository reads) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("task failed: {e}")))
    })
}
