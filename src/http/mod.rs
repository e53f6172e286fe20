//! The HTTP room: songs for players, a JSON API, `/metrics`, and the web
//! player's page, on axum (hyper) with tower-http's request spans.
//!
//! - [`range`]: the one pure function that turns `Range`, `If-Range` and
//!   `If-None-Match` into a status and a byte range (its table of cases is
//!   what Chrome, Safari, Firefox, ffmpeg and mpv send).
//! - [`catalog`]: the songs this process knows (manifest + torrent handle)
//!   and what a song URL resolves to; content types and byte rates.
//! - [`song`]: `GET`/`HEAD /songs/{info-hash}[/{file-index}]`.
//! - [`body`]: a song's body, read from verified pieces only, telling the
//!   torrent's coordinator where the stream is (`StreamAt`/`StreamClosed`).
//! - [`api`]: `/api/songs`, `/api/torrents[/{info-hash}]` (JSON).
//! - [`search`]: `/api/search` and `/api/library`, the ring's library.
//! - [`playlists`]: `/api/playlists...` and `/api/identity`: anyone's
//!   playlists read, the user's own made and edited (signed, with
//!   compare-and-swap); [`tracks`] describes their tracks.
//! - [`prefetch`]: `/api/fetch` (start a song of the ring on demand) and
//!   `/api/prefetch` (the web player's one track ahead, and its cancel).
//! - [`refused`]: a refused request's status and reason.
//! - [`guard`]: changes (POST, PUT, DELETE) only from the page's own
//!   origin and with a JSON body.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`rates`]: download and upload rates from byte counters.
//! - [`probe`]: a player's view of a song URL (time to first byte), for
//!   `demo` and the simulation.
//!
//! Handlers are thin: they parse, ask the process (the [`Catalog`] of
//! torrent handles; never a lock on download state), and render. The
//! server runs under the process's cancellation token and task tracker;
//! cancelling it ends every stream and then the server.

pub mod api;
pub mod body;
pub mod catalog;
pub mod guard;
pub mod metrics;
pub mod playlists;
pub mod prefetch;
pub mod probe;
pub mod range;
pub mod rates;
pub mod refused;
pub mod search;
pub mod song;
pub mod tracks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

pub use catalog::Catalog;
use metrics::Metrics;

use crate::chord::driver::ChordHandle;

/// What every handler may ask: the process's torrents and counters.
#[derive(Clone)]
pub struct HttpContext {
    /// The torrents of the process, by info-hash.
    pub catalog: Catalog,
    /// The registry `/metrics` renders, and the streams' counters.
    pub metrics: Metrics,
    /// Cancelled when the process stops: every stream ends with it.
    pub cancel: CancellationToken,
    /// The process's ring node, once it has joined (searches go there).
    pub chord: Arc<OnceLock<ChordHandle>>,
    /// The config directory holding the user's identity (playlists are
    /// signed with it) and the index of own playlists.
    pub identity_dir: PathBuf,
    /// Starts and stops torrents on demand (None: this process cannot).
    pub fetcher: Option<Arc<dyn prefetch::Fetcher>>,
    /// The web player's track ahead.
    pub prefetch: prefetch::Slot,
}

impl std::fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext")
            .field("catalog", &self.catalog)
            .field("in_ring", &self.chord.get().is_some())
            .finish_non_exhaustive()
    }
}

impl HttpContext {
    /// A context over `catalog` and the ring node `chord` (once joined).
    pub fn new(
        catalog: Catalog,
        chord: Arc<OnceLock<ChordHandle>>,
        cancel: CancellationToken,
    ) -> HttpContext {
        HttpContext {
            metrics: Metrics::new(catalog.clone(), chord.clone()),
            catalog,
            cancel,
            chord,
            identity_dir: crate::identity::default_config_dir(),
            fetcher: None,
            prefetch: prefetch::Slot::default(),
        }
    }
}

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve HTTP on {addr}: {source}")]
pub struct HttpError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the OS said.
    pub source: std::io::Error,
}

/// Time a client has to send a request's header (its request line and
/// every header field), on a new connection and between requests on a
/// kept-alive one: a client that opens connections and sends half a
/// request line would otherwise hold each one, and its task, for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound HTTP listener, before it serves.
pub struct HttpServer {
    /// The socket.
    listener: TcpListener,
    /// Its address (the real port when port 0 was asked for).
    local_addr: SocketAddr,
    /// See [`HEADER_READ_TIMEOUT`].
    header_timeout: Duration,
}

impl HttpServer {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> Result<HttpServer, HttpError> {
        let err = |source| HttpError { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(err)?;
        let local_addr = listener.local_addr().map_err(err)?;
        Ok(HttpServer {
            listener,
            local_addr,
            header_timeout: HEADER_READ_TIMEOUT,
        })
    }

    /// The same with another header read time-out (tests shorten it).
    pub fn with_header_timeout(mut self, timeout: Duration) -> HttpServer {
        self.header_timeout = timeout;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `ctx.cancel` is cancelled, then waits for the open
    /// connections, whose streams end with the same token. Each connection
    /// is hyper's HTTP/1 with a timer, so that the header read time-out
    /// holds (axum's `serve` sets no timer, and without one hyper waits
    /// for a header for ever).
    pub async fn run(self, ctx: HttpContext) {
        let cancel = ctx.cancel.clone();
        let app = router(ctx);
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(app.clone());
            let cancel = cancel.clone();
            let header_timeout = self.header_timeout;
            connections.spawn(async move {
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout);
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                let served = tokio::select! {
                    r = conn.as_mut() => r,
                    _ = cancel.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
            });
        }
        connections.close();
        connections.wait().await;
    }
}

/// Every route of the room.
pub fn router(ctx: HttpContext) -> Router {
    Router::new()
        .route("/", get(player_page))
        .route("/songs/{hash}", get(song::whole_torrent))
        .route("/songs/{hash}/{index}", get(song::one_file))
        .route("/api/songs", get(api::songs))
        .route("/api/torrents", get(api::torrents))
        .route("/api/torrents/{hash}", get(api::torrent))
        .route("/api/search", get(search::search))
        .route("/api/library", get(search::library))
        .route("/api/identity", get(playlists::identity))
        .route(
            "/api/playlists",
            get(playlists::list).post(playlists::create),
        )
        .route(
            "/api/playlists/{owner}/{name}",
            get(playlists::show).put(playlists::replace),
        )
        .route(
            "/api/playlists/{owner}/{name}/tracks",
            post(playlists::append).delete(playlists::remove),
        )
        .route("/api/fetch", post(prefetch::fetch))
        .route(
            "/api/prefetch",
            get(prefetch::show)
                .put(prefetch::set)
                .delete(prefetch::skip),
        )
        .route("/catalog.js", get(catalog_script))
        .route("/playlists.js", get(playlists_script))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(guard::same_origin_json))
        .layer(TraceLayer::new_for_http())
        .with_state(ctx)
}

/// The URL of a song, relative to the server's root.
pub fn song_path(info_hash: &crate::id::Id, index: Option<usize>) -> String {
    match index {
        Some(i) => format!("/songs/{}/{i}", info_hash.to_hex()),
        None => format!("/songs/{}", info_hash.to_hex()),
    }
}

async fn player_page() -> Html<&'static str> {
    Html(include_str!("player/index.html"))
}

/// The web player's search, browse and library views.
async fn catalog_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("player/catalog.js"),
    )
        .into_response()
}

/// The web player's playlists and prefetch.
async fn playlists_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("player/playlists.js"),
    )
        .into_response()
}

async fn metrics_text(axum::extract::State(ctx): axum::extract::State<HttpContext>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        ctx.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}
