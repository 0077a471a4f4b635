//! The server's routes. Every error is a 4xx/5xx with a JSON body `{"error": "…"}` that says what
//! was wrong; nothing a request holds can panic the server.

use super::bundle;
use super::files::{Refused, content_type, resolve};
use super::guard::{AllowedHosts, refusal};
use super::hub::Shared;
use super::start::DataRoots;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use ltlab_types::{ErrorBody, GridImage, HostCommand, RunId};
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{Read, Seek};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The largest command body accepted (commands are a few hundred bytes).
const BODY_LIMIT: usize = 64 * 1024;
/// The most metrics bytes one response carries; the page asks again for the rest.
const METRICS_CHUNK: u64 = 8 << 20;
const TOKEN_COOKIE: &str = "ltlab_token";

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    token: Option<Arc<str>>,
    data_roots: Arc<DataRoots>,
}

/// A refused request: its status and what was wrong.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&ErrorBody { error: self.1 }).expect("error bodies serialise");
        (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

fn bad(what: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, what.into())
}

fn missing(what: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, what.into())
}

pub fn router(shared: Arc<Shared>, token: Option<String>, allowed: AllowedHosts, data_roots: DataRoots) -> Router {
    let state = AppState { shared, token: token.map(Arc::from), data_roots: Arc::new(data_roots) };
    Router::new()
        .route("/", get(page))
        .route("/ltlab_web.js", get(|| async { asset(bundle::JS, "text/javascript") }))
        .route("/ltlab_web_bg.wasm", get(|| async { asset(bundle::WASM, "application/wasm") }))
        .route("/api/hello", get(hello))
        .route("/api/events", get(events))
        .route("/api/command", post(command))
        .route("/api/runs/{id}/metrics", get(metrics))
        .route("/api/runs/{id}/columns", get(columns))
        .route("/api/runs/{id}/grids/{step}", get(grid))
        .route("/api/runs/{id}/view-grids/{index}", get(view_grid))
        .route("/api/runs/{id}/latents/{index}", get(thumbnails))
        .route("/files/{*path}", get(file))
        .fallback(|| async { missing("no such route") })
        .method_not_allowed_fallback(|| async { ApiError(StatusCode::METHOD_NOT_ALLOWED, "this route does not take that method".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(Arc::new(allowed), guard))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(log_request))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

fn asset(bytes: &'static [u8], kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], bytes).into_response()
}

async fn page() -> Response {
    asset(bundle::INDEX_HTML.as_bytes(), "text/html; charset=utf-8")
}

/// The token from the `Authorization` header, the `token` query parameter or the page's cookie.
fn offered_token(req: &Request) -> (Option<&str>, bool) {
    let h = req.headers();
    if let Some(t) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        return (Some(t), false);
    }
    if let Some(t) = req.uri().query().into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("token=")) {
        return (Some(t), true);
    }
    let cookie =
        h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| c.trim().strip_prefix("ltlab_token="));
    (cookie, false)
}

/// Equal in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = st.token.clone() else { return next.run(req).await };
    let (offered, in_query) = offered_token(&req);
    if !offered.is_some_and(|t| same(t, &token)) {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "this server needs its token: open the URL `ltlab serve` printed, or send `Authorization: Bearer TOKEN`".into(),
        )
        .into_response();
    }
    let mut resp = next.run(req).await;
    if in_query {
        // The page's own requests (the script, the wasm, the live channel) then carry it.
        if let Ok(v) = HeaderValue::from_str(&format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Foreign `Host` names and cross-site commands stop here (see `guard`).
async fn guard(State(allowed): State<Arc<AllowedHosts>>, req: Request, next: Next) -> Response {
    match refusal(req.method(), req.headers(), &allowed) {
        Some(why) => ApiError(StatusCode::FORBIDDEN, why).into_response(),
        None => next.run(req).await,
    }
}

/// Errors axum's extractors make (a path or query that does not parse) come as plain text;
/// they are given the same JSON body as ours.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let is_json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || is_json {
        return resp;
    }
    let status = resp.status();
    let text = match axum::body::to_bytes(resp.into_body(), BODY_LIMIT).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    ApiError(status, if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text }).into_response()
}

/// One line per request to the runs and the API on stderr (not the page's own files).
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let shown = if path.starts_with("/api/") || path.starts_with("/files/") { req.uri().path_and_query().map(|p| p.to_string()) } else { None };
    let resp = next.run(req).await;
    if let Some(p) = shown {
        // The token is a secret: never in the log.
        let p = p.split("token=").next().unwrap_or_default().trim_end_matches(['?', '&']).to_string();
        eprintln!("{method} {p} {}", resp.status().as_u16());
    }
    resp
}

async fn hello(State(st): State<AppState>) -> Response {
    let hello = st.shared.read().hello(st.shared.read_only);
    axum::Json(hello).into_response()
}

/// The live channel: first a `hello` event (the server's state as of message `seq`), then every
/// numbered message. Subscribed before the state is read, so nothing after `seq` is missed (and
/// what is not after it, the page drops). A page that falls behind the channel's buffer (it
/// stopped reading) gets a fresh hello in place of what it missed: its memory on the server is
/// the shared buffer's, never a queue of its own.
async fn events(State(st): State<AppState>) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = st.shared.live.subscribe();
    let first = hello_event(&st.shared);
    let shared = st.shared.clone();
    let live = futures_util::stream::unfold(rx, move |mut rx| {
        let shared = shared.clone();
        async move {
            match rx.recv().await {
                Ok(text) => Some((Ok(SseEvent::default().data(&*text)), rx)),
                Err(RecvError::Lagged(_)) => Some((Ok(hello_event(&shared)), rx)),
                Err(RecvError::Closed) => None,
            }
        }
    });
    Sse::new(futures_util::stream::once(async move { Ok(first) }).chain(live)).keep_alive(KeepAlive::default())
}

fn hello_event(shared: &Shared) -> SseEvent {
    let hello = shared.read().hello(shared.read_only);
    SseEvent::default().event("hello").data(serde_json::to_string(&hello).expect("the hello serialises"))
}

fn run_id(text: &str) -> Result<RunId, ApiError> {
    text.parse().map(RunId).map_err(|_| bad(format!("run id `{text}`: expected a number")))
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| bad(format!("{what} `{text}`: expected a number")))
}

async fn command(State(st): State<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    if st.shared.read_only {
        return Err(ApiError(StatusCode::FORBIDDEN, "this server is read-only (`--read-only`): it takes no commands".into()));
    }
    let body = body.map_err(|r| ApiError(r.status(), format!("request body: {}", r.body_text())))?;
    let cmd: HostCommand = serde_json::from_slice(&body).map_err(|e| bad(format!("not a command: {e}")))?;
    let cmd = checked(&st, cmd)?;
    st.shared.commands.send(cmd).map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "the engine host has stopped".into()))?;
    Ok((StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "accepted": true }))).into_response())
}

/// A command as the host may carry it out: its run exists, a folder to open is a run inside
/// the runs folder, and a Start stays inside what the server was allowed (`start`).
fn checked(st: &AppState, cmd: HostCommand) -> Result<HostCommand, ApiError> {
    if let HostCommand::Start(args) = &cmd
        && let Some(why) = super::start::refusal(args, &st.data_roots)
    {
        return Err(ApiError(StatusCode::FORBIDDEN, format!("start: {why}")));
    }
    let run = match &cmd {
        HostCommand::Pause(r) | HostCommand::Resume(r) | HostCommand::Stop(r) | HostCommand::SampleNow(r) => Some(*r),
        HostCommand::LatentMap { run, .. } | HostCommand::Entanglement { run, .. } | HostCommand::Transfer { run, .. } | HostCommand::Sample { run, .. } => {
            Some(*run)
        }
        _ => None,
    };
    if let Some(r) = run
        && st.shared.read().run(r).is_none()
    {
        return Err(missing(format!("no run {}", r.0)));
    }
    if let HostCommand::Open(dir) = &cmd {
        let root = &st.shared.root;
        let rel = std::path::Path::new(dir).strip_prefix(root).map(|p| p.display().to_string()).unwrap_or_else(|_| dir.clone());
        let config = resolve(root, &format!("{}/config.toml", rel.trim_end_matches('/'))).map_err(|r| match r {
            Refused::Outside => ApiError(StatusCode::FORBIDDEN, format!("open `{dir}`: only runs inside the server's runs folder")),
            Refused::NotFound => missing(format!("open `{dir}`: not a run directory (no config.toml)")),
        })?;
        let parent = config.parent().expect("a file inside the folder has a parent");
        return Ok(HostCommand::Open(parent.display().to_string()));
    }
    Ok(cmd)
}

/// Bytes `from` … of the run's `metrics.jsonl`, cut after the last whole line.
async fn metrics(State(st): State<AppState>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let from: u64 = q.get("from").map(|f| number(f, "option `from`")).transpose()?.unwrap_or(0);
    let dir = st.shared.read().run(id).map(|r| r.header.dir.clone()).ok_or_else(|| missing(format!("no run {}", id.0)))?;
    let path = std::path::Path::new(&dir).join("metrics.jsonl");
    let (bytes, next, more) =
        tokio::task::spawn_blocking(move || read_lines_from(&path, from)).await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    headers.insert("x-next-offset", HeaderValue::from(next));
    headers.insert("x-more", HeaderValue::from_static(if more { "1" } else { "0" }));
    Ok((headers, bytes).into_response())
}

/// The run's log as the server holds it, in compact columns (`Metrics::encode_columns`): what a
/// page draws, without parsing JSON lines; `?detail=0` leaves out the loss by t and OC's
/// transfers (the loss curves first, the rest after).
async fn columns(State(st): State<AppState>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let detail = match q.get("detail").map(String::as_str) {
        None | Some("1") => true,
        Some("0") => false,
        Some(other) => return Err(bad(format!("option `detail` `{other}`: expected 0 or 1"))),
    };
    let shared = st.shared.clone();
    let bytes = tokio::task::spawn_blocking(move || shared.read().run(id).map(|r| r.metrics.encode_columns(detail)))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| missing(format!("no run {}", id.0)))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

fn read_lines_from(path: &std::path::Path, from: u64) -> Result<(Vec<u8>, u64, bool), ApiError> {
    let io = |e: std::io::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {e}", path.display()));
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && from == 0 => return Ok((Vec::new(), 0, false)),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    if from > len {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("offset {from} is past the end of the metrics ({len} bytes): the file was rewritten (a resumed run); read it from 0"),
        ));
    }
    let want = (len - from).min(METRICS_CHUNK);
    file.seek(std::io::SeekFrom::Start(from)).map_err(io)?;
    let mut bytes = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut bytes).map_err(io)?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole == 0 && want == METRICS_CHUNK {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("{}: a line longer than {METRICS_CHUNK} bytes at offset {from}", path.display())));
    }
    bytes.truncate(whole);
    let next = from + whole as u64;
    Ok((bytes, next, want == METRICS_CHUNK && next < len))
}

/// Encodes on a blocking thread: a grid is hundreds of KB of pixels.
async fn png(img: GridImage) -> Result<Response, ApiError> {
    tokio::task::spawn_blocking(move || encode_png(img)).await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn encode_png(img: GridImage) -> Result<Response, ApiError> {
    let rgba = image::RgbaImage::from_raw(img.width as u32, img.height as u32, img.rgba)
        .ok_or_else(|| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "a grid with the wrong number of pixels".into()))?;
    let mut bytes = Vec::new();
    rgba.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response())
}

async fn grid(State(st): State<AppState>, Path((id, step)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (id, step) = (run_id(&id)?, number::<u64>(&step, "step")?);
    let img = st.shared.read().run(id).and_then(|r| r.grids.get(&step).cloned()).ok_or_else(|| missing(format!("run {} has no grid at step {step}", id.0)))?;
    png(img).await
}

async fn view_grid(State(st): State<AppState>, Path((id, index)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (id, index) = (run_id(&id)?, number::<usize>(&index, "index")?);
    let img = st
        .shared
        .read()
        .run(id)
        .and_then(|r| r.view_grids.get(index).map(|g| g.image.clone()))
        .ok_or_else(|| missing(format!("run {} has no view grid {index}", id.0)))?;
    png(img).await
}

async fn thumbnails(State(st): State<AppState>, Path((id, index)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (id, index) = (run_id(&id)?, number::<usize>(&index, "index")?);
    let pixels = st
        .shared
        .read()
        .run(id)
        .and_then(|r| r.latent_maps.get(index).and_then(|m| m.images.as_ref()).map(|t| t.pixels.clone()))
        .ok_or_else(|| missing(format!("run {} has no latent map {index} with images", id.0)))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], pixels).into_response())
}

async fn file(State(st): State<AppState>, Path(rel): Path<String>) -> Result<Response, ApiError> {
    let path = resolve(&st.shared.root, &rel).map_err(|r| match r {
        Refused::Outside => ApiError(StatusCode::FORBIDDEN, format!("`{rel}`: only files inside the runs folder")),
        Refused::NotFound => missing(format!("`{rel}`: no such file in the runs folder")),
    })?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| missing(format!("`{rel}`: {e}")))?;
    Ok(([(header::CONTENT_TYPE, content_type(&path))], Body::from(bytes)).into_response())
}
