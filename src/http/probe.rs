//! A player's view of a song URL, for `demo` and the simulation: one `GET`
//! (with a `Range` when asked) on hyper's client, the time from sending it
//! to the first body byte, and the bytes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::{header, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What one `GET` saw.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The response's status code.
    pub status: u16,
    /// From sending the request to the first body byte (None: no body).
    pub first_byte: Option<Duration>,
    /// The body, up to the limit asked for.
    pub body: Vec<u8>,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No connection to the server.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a bad path).
    #[error("bad request: {0}")]
    Request(#[from] axum::http::Error),
}

/// `GET path` from the server at `addr`, from byte `from` of the resource
/// on (a `Range` when not 0); reads at most `limit` body bytes and then
/// hangs up, as a player that seeks away does.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    from: u64,
    limit: usize,
) -> Result<Fetched, ProbeError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| ProbeError::Connect { addr, source })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let mut request = Request::get(path).header(header::HOST, addr.to_string());
    if from > 0 {
        request = request.header(header::RANGE, format!("bytes={from}-"));
    }
    let request = request.body(Empty::<Bytes>::new())?;
    let sent = Instant::now();
    let result = async {
        let mut response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let (mut first_byte, mut body) = (None, Vec::new());
        while body.len() < limit {
            let Some(frame) = response.body_mut().frame().await else {
                break;
            };
            if let Ok(data) = frame?.into_data() {
                if first_byte.is_none() && !data.is_empty() {
                    first_byte = Some(sent.elapsed());
                }
                body.extend_from_slice(&data);
            }
        }
        body.truncate(limit);
        Ok(Fetched {
            status,
            first_byte,
            body,
        })
    }
    .await;
    connection.abort();
    result
}
