//! `songswarm probe URL` (hidden): a player's first request, timed, for
//! the multi-network simulation, whose images have no HTTP client. It asks
//! until the URL answers 200 (the server is up and has the song in its
//! catalog), and reports the time from that `GET` to its first body byte.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::net::TcpStream;

use super::output::{Event, Output};
use super::CmdError;
use crate::http::probe;

/// Pause between two tries while the URL does not answer 200 yet.
const RETRY: Duration = Duration::from_millis(20);
/// Time a try has to connect.
const CONNECT_TRY: Duration = Duration::from_millis(200);

/// Flags of `probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// `http://IP:PORT/PATH` (an address: no name resolution).
    url: String,
    /// Seconds to wait for the URL to answer 200.
    #[arg(long, default_value_t = 60)]
    wait: u64,
    /// Body bytes to read (the first one is timed).
    #[arg(long, default_value_t = 64 * 1024)]
    bytes: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Splits `http://IP:PORT/PATH` into the address and the path.
fn split_url(url: &str) -> Option<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((host.parse().ok()?, path.to_string()))
}

/// Probes until the URL answers 200 or `--wait` runs out.
pub async fn run(args: ProbeArgs) -> Result<(), CmdError> {
    let failed = |why: String| CmdError::Probe {
        url: args.url.clone(),
        why,
    };
    let (addr, path) =
        split_url(&args.url).ok_or_else(|| failed("not http://IP:PORT/PATH".into()))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.wait);
    loop {
        // A host that is not up yet may leave a connect hanging for
        // seconds (no ARP answer): try the port briefly first, so that the
        // GET goes out soon after the server answers.
        let reachable = tokio::time::timeout(CONNECT_TRY, TcpStream::connect(addr)).await;
        let result = match reachable {
            Ok(Ok(_)) => probe::get(addr, &path, 0, args.bytes).await,
            Ok(Err(source)) => Err(probe::ProbeError::Connect { addr, source }),
            Err(_) => Err(probe::ProbeError::Connect {
                addr,
                source: std::io::ErrorKind::TimedOut.into(),
            }),
        };
        let why = match result {
            Ok(f) if f.status == 200 => {
                let first_byte = f.first_byte.ok_or_else(|| failed("an empty body".into()))?;
                Output::new(args.json).print(&Event::Probed {
                    url: &args.url,
                    waited: started.elapsed().saturating_sub(first_byte),
                    first_byte,
                    bytes: f.body.len(),
                });
                return Ok(());
            }
            Ok(f) => format!("status {}", f.status),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(failed(why));
        }
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_address_and_path() {
        let (addr, path) = split_url("http://127.0.0.1:8080/songs/ab").unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:8080");
        assert_eq!(path, "/songs/ab");
        assert_eq!(split_url("http://127.0.0.1:1").unwrap().1, "/");
        assert!(split_url("https://127.0.0.1:1/").is_none());
        assert!(split_url("http://localhost:1/").is_none());
    }
}
