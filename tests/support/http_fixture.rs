//! The HTTP room on a real socket over a torrent whose verified pieces the
//! test controls: the test plays the coordinator, so it sees every
//! `StreamAt` and `StreamClosed` a body sends and decides when each piece
//! passes its check. Needs `manifest_bencode` and `http_client` beside it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha1::{Digest, Sha1};
use songswarm::http::{Catalog, HttpContext, HttpServer};
use songswarm::manifest::Manifest;
use songswarm::storage::Storage;
use songswarm::swarm::coordinator::{TorrentHandle, TorrentStats};
use songswarm::swarm::verified::VerifiedPieces;
use songswarm::swarm::{StreamId, TorrentEvent};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::http_client::HTTP_DEADLINE;
use crate::manifest_bencode::B;

/// One file of a test torrent.
pub struct FileSpec {
    /// Its name.
    pub name: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// The `codec` of its own song tags, if any (album files only).
    pub codec: Option<&'static str>,
}

impl FileSpec {
    /// `len` random bytes from `seed`.
    pub fn random(name: &str, len: usize, seed: u64) -> FileSpec {
        let mut rng = StdRng::seed_from_u64(seed);
        FileSpec {
            name: name.to_string(),
            data: (0..len).map(|_| rng.gen()).collect(),
            codec: None,
        }
    }

    /// The same, tagged with `codec`.
    pub fn with_codec(mut self, codec: &'static str) -> FileSpec {
        self.codec = Some(codec);
        self
    }
}

/// Writes `files` under `dir` and returns their manifest and the torrent's
/// byte stream. One file: a single-file torrent named after it, tagged as
/// "Test Song" by "The Testers", 10 s of mp3. Several: the album `album`,
/// tagged with its album name, each file with its own codec if it has one.
pub fn song_manifest(
    dir: &Path,
    album: &str,
    files: &[FileSpec],
    piece_length: u64,
) -> (Manifest, Vec<u8>) {
    let data: Vec<u8> = files.iter().flat_map(|f| f.data.iter().copied()).collect();
    let pieces: Vec<u8> = data
        .chunks(piece_length as usize)
        .flat_map(|c| Sha1::digest(c).to_vec())
        .collect();
    let mut info = B::dict([
        ("piece length", B::Int(piece_length as i64)),
        ("pieces", B::Bytes(pieces)),
    ]);
    if let [one] = files {
        std::fs::write(dir.join(&one.name), &one.data).unwrap();
        info.set("name", B::s(&one.name));
        info.set("length", B::Int(one.data.len() as i64));
        let song = B::dict([
            ("title", B::s("Test Song")),
            ("artist", B::s("The Testers")),
            ("duration_ms", B::Int(10_000)),
            ("codec", B::s("mp3")),
        ]);
        info.set("song", song);
    } else {
        std::fs::create_dir_all(dir.join(album)).unwrap();
        let mut list = Vec::new();
        for f in files {
            std::fs::write(dir.join(album).join(&f.name), &f.data).unwrap();
            let mut entry = B::dict([
                ("length", B::Int(f.data.len() as i64)),
                ("path", B::List(vec![B::s(&f.name)])),
            ]);
            if let Some(codec) = f.codec {
                entry.set("song", B::dict([("codec", B::s(codec))]));
            }
            list.push(entry);
        }
        info.set("name", B::s(album));
        info.set("files", B::List(list));
        info.set("song", B::dict([("album", B::s("Test Album"))]));
    }
    let bytes = B::dict([("info", info)]).encode();
    (Manifest::from_bytes(&bytes).unwrap(), data)
}

/// A torrent served by the room, with the test in the coordinator's place.
pub struct Fixture {
    /// Holds the data; removed when dropped.
    pub dir: tempfile::TempDir,
    /// The torrent's whole byte stream.
    pub data: Vec<u8>,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
    /// The coordinator's inbox, read by the test.
    pub events: mpsc::Receiver<TorrentEvent>,
    /// The verified set the bodies wait on.
    pub verified: watch::Sender<VerifiedPieces>,
    /// The progress the JSON API and /metrics read.
    pub stats: watch::Sender<TorrentStats>,
    /// Where the room listens.
    pub addr: SocketAddr,
    /// Stops the room.
    pub cancel: CancellationToken,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Serves `files` (all data written, nothing verified yet).
pub async fn serve(files: &[FileSpec], piece_length: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, data) = song_manifest(dir.path(), "album", files, piece_length);
    let storage = Arc::new(Storage::open_existing(dir.path(), &manifest).unwrap());
    let (events_tx, events) = mpsc::channel(4096);
    let (verified, verified_rx) = watch::channel(VerifiedPieces::new(manifest.piece_count()));
    let (stats, stats_rx) = watch::channel(TorrentStats::default());
    let handle = TorrentHandle {
        info_hash: manifest.info_hash,
        events: events_tx.into(),
        stats: stats_rx,
        verified: verified_rx,
        storage,
    };
    let catalog = Catalog::default();
    let manifest = Arc::new(manifest);
    catalog.insert(manifest.clone(), handle);
    let cancel = CancellationToken::new();
    let server = HttpServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let ctx = HttpContext::new(catalog, Arc::new(OnceLock::new()), cancel.clone());
    tokio::spawn(server.run(ctx));
    Fixture {
        dir,
        data,
        manifest,
        events,
        verified,
        stats,
        addr,
        cancel,
    }
}

/// One song of `len` random bytes in pieces of `piece_length`.
pub async fn one_song(len: usize, piece_length: u64) -> Fixture {
    serve(&[FileSpec::random("song.mp3", len, 7)], piece_length).await
}

impl Fixture {
    /// The URL of a single-file torrent's song.
    pub fn url(&self) -> String {
        format!("/songs/{}", self.manifest.info_hash.to_hex())
    }

    /// Lets `pieces` pass their check.
    pub fn verify(&self, pieces: impl IntoIterator<Item = u32>) {
        self.verified.send_modify(|v| {
            for p in pieces {
                v.set(p);
            }
        });
    }

    /// Lets every piece pass its check.
    pub fn verify_all(&self) {
        self.verify(0..self.manifest.piece_count());
    }

    /// The next `StreamAt`: (id, offset, end, byte rate).
    pub async fn stream_at(&mut self) -> (StreamId, u64, u64, u64) {
        match self.next_event().await {
            TorrentEvent::StreamAt {
                id,
                offset,
                end,
                byte_rate,
            } => (id, offset, end, byte_rate),
            other => panic!("expected StreamAt, got {other:?}"),
        }
    }

    /// Waits for `StreamClosed` of `id`, skipping that stream's `StreamAt`s.
    pub async fn closed(&mut self, id: StreamId) {
        loop {
            match self.next_event().await {
                TorrentEvent::StreamClosed { id: c } if c == id => return,
                TorrentEvent::StreamAt { id: a, .. } if a == id => {}
                other => panic!("expected StreamClosed of {id}, got {other:?}"),
            }
        }
    }

    /// The next event the room sent the coordinator.
    pub async fn next_event(&mut self) -> TorrentEvent {
        tokio::time::timeout(HTTP_DEADLINE, self.events.recv())
            .await
            .expect("no event in time")
            .expect("inbox closed")
    }

    /// Fails if the room has sent the coordinator anything.
    pub fn assert_no_event(&mut self, what: &str) {
        if let Ok(ev) = self.events.try_recv() {
            panic!("{what}: unexpected {ev:?}");
        }
    }
}
