//! No lock-out: a thousand connections that send a valid handshake and then
//! only keep-alives, from two hundred addresses, do not keep real leechers
//! (songswarm and libtorrent) from a `songswarm seed` with its default
//! limits. The idle connections fill every peer slot first; the leechers
//! then get slots that idle peers give up, and download the whole song.
//!
//! libtorrent missing is a failure that says to run scripts/install-test-deps.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use songswarm::config::SwarmConfig;
use songswarm::id::Id;
use songswarm::wire::handshake::{self, Handshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;

use content::{assert_same_content, song, songswarm, with_manifest, Maker, DEADLINE};
use procs::{lt_peer, require_libtorrent, Proc};

/// Idle connections, and how many per source address (127.0.0.2 on): under
/// the per-address cap, so that only the slot count holds them back.
const IDLE: usize = 1000;
const PER_ADDRESS: usize = 5;

/// What became of one idle connection.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The seed answered the handshake: the connection holds a slot.
    Held,
    /// The seed closed it (or never answered) before its handshake.
    Refused,
    /// The seed closed it after answering: it lost its slot.
    Closed,
}

/// One idle peer: connects from `ip`, exchanges handshakes, then sends a
/// keep-alive every second and reads (and drops) whatever the seed sends,
/// until `stop`.
async fn idle_peer(
    ip: Ipv4Addr,
    seed: SocketAddr,
    info_hash: Id,
    n: usize,
    out: mpsc::Sender<Outcome>,
    stop: CancellationToken,
) {
    let limit = Duration::from_secs(10);
    let connected = async {
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::from((ip, 0))).ok()?;
        let mut stream = socket.connect(seed).await.ok()?;
        let mut id = [b'I'; 20];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let ours = Handshake::new(info_hash, id);
        handshake::exchange(&mut stream, &ours, limit).await.ok()?;
        Some(stream)
    };
    let Some(mut stream) = tokio::time::timeout(limit, connected).await.ok().flatten() else {
        let _ = out.send(Outcome::Refused);
        return;
    };
    let _ = out.send(Outcome::Held);
    let mut keepalive = tokio::time::interval(Duration::from_secs(1));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = keepalive.tick() => {
                if stream.write_all(&[0, 0, 0, 0]).await.is_err() {
                    let _ = out.send(Outcome::Closed);
                    return;
                }
            }
            r = stream.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) {
                let _ = out.send(Outcome::Closed);
                return;
            },
        }
    }
}

/// The seed's listening line: its address and the song's info-hash.
fn start_seed(manifest: &std::path::Path, data: &std::path::Path) -> (Proc, SocketAddr, Id) {
    let mut cmd = songswarm();
    cmd.arg("seed").arg(manifest).arg("--data").arg(data);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let (_, ready) = seed.expect_event("listening", DEADLINE);
    let addr: SocketAddr = ready["addr"].as_str().expect("addr").parse().expect("addr");
    let hash: Id = ready["info_hashes"][0]
        .as_str()
        .expect("info_hash")
        .parse()
        .expect("hex info-hash");
    (seed, addr, hash)
}

/// A songswarm and a libtorrent leecher download the song from `seed` at
/// once; returns how long each took, from their start.
fn leech_both(
    manifest: &std::path::Path,
    seed: SocketAddr,
    out: &std::path::Path,
) -> (Duration, Duration) {
    let start = Instant::now();
    let mut cmd = songswarm();
    cmd.arg("leech")
        .arg(manifest)
        .arg("--out")
        .arg(out.join("sw"));
    cmd.args([
        "--peer",
        &seed.to_string(),
        "--listen",
        "127.0.0.1:0",
        "--json",
    ]);
    let mut sw = Proc::spawn("songswarm leech", cmd);
    let mut cmd = lt_peer("leech");
    cmd.arg(manifest).arg("--out").arg(out.join("lt"));
    cmd.args(["--peer", &seed.to_string(), "--timeout", "60"]);
    let mut lt = Proc::spawn("lt leech", cmd);
    let (sw_done, _) = sw.expect_event("done", DEADLINE);
    sw.expect_success(DEADLINE);
    let (lt_done, _) = lt.expect_event("done", DEADLINE);
    lt.expect_success(DEADLINE);
    (sw_done - start, lt_done - start)
}

#[test]
fn a_thousand_idle_connections_do_not_lock_leechers_out() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(song, Maker::Songswarm);

    // Without idle connections, for comparison.
    let (mut seed, addr, _) = start_seed(&manifest, &src);
    let alone = dir.path().join("alone");
    let (sw_alone, lt_alone) = leech_both(&manifest, addr, &alone);
    seed.terminate();
    seed.wait_exit(DEADLINE);
    assert_same_content(&content, &src, &alone.join("sw"));
    assert_same_content(&content, &src, &alone.join("lt"));

    let (mut seed, addr, info_hash) = start_seed(&manifest, &src);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stop = CancellationToken::new();
    let (tx, outcomes) = mpsc::channel();
    for n in 0..IDLE {
        let ip = Ipv4Addr::new(127, 0, 0, 2 + (n / PER_ADDRESS) as u8);
        runtime.spawn(idle_peer(ip, addr, info_hash, n, tx.clone(), stop.clone()));
    }
    // Every idle connection was answered or refused: the slots are full.
    let (mut held, mut refused, mut closed) = (0, 0, 0);
    let deadline = Instant::now() + DEADLINE;
    while held + refused < IDLE {
        let left = deadline.saturating_duration_since(Instant::now());
        match outcomes
            .recv_timeout(left)
            .expect("an idle connection hangs")
        {
            Outcome::Held => held += 1,
            Outcome::Refused => refused += 1,
            Outcome::Closed => closed += 1,
        }
    }
    let slots = SwarmConfig::default().max_peers;
    assert!(
        held - closed >= slots,
        "the idle connections did not fill the {slots} slots: {held} held, {closed} closed since"
    );
    assert!(
        held - closed <= slots,
        "{held} held, {closed} closed: over the cap"
    );

    let attacked = dir.path().join("attacked");
    let (sw_attacked, lt_attacked) = leech_both(&manifest, addr, &attacked);
    assert_same_content(&content, &src, &attacked.join("sw"));
    assert_same_content(&content, &src, &attacked.join("lt"));
    while let Ok(o) = outcomes.try_recv() {
        if o == Outcome::Closed {
            closed += 1;
        }
    }
    println!(
        "songswarm leecher {sw_alone:.2?} alone, {sw_attacked:.2?} beside {IDLE} idle \
         connections; libtorrent {lt_alone:.2?} and {lt_attacked:.2?}; idle connections \
         held {held}, refused {refused}, evicted {closed}"
    );
    assert!(
        closed > 0,
        "the leechers got slots without any idle peer leaving"
    );
    stop.cancel();
    runtime.shutdown_timeout(Duration::from_secs(5));
    seed.terminate();
    seed.wait_exit(DEADLINE);
}
