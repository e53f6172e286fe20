//! `/metrics`: the process's counters in the Prometheus text format
//! (version 0.0.4), through the `prometheus-client` crate.
//!
//! Three sources: the song streams count into [`StreamMetrics`] as they
//! run; the torrents' counters are read from their published progress at
//! each scrape (`SwarmCollector`: nothing in the download path counts for
//! us); the ring's are the Chord node's own counters
//! ([`RingMetrics`](crate::chord::metrics::RingMetrics)), read at each scrape
//! once the process has joined a ring.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::catalog::Catalog;
use crate::chord::driver::ChordHandle;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Bounds of the latency histograms, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What the song streams count.
#[derive(Clone, Debug)]
pub struct StreamMetrics {
    /// Seconds from a request at a song's start to its first body byte.
    pub first_byte: Histogram,
    /// Seconds from a request anywhere else (a seek) to its first body byte.
    pub seek: Histogram,
    /// Times a stream that had started waited for a piece not yet verified.
    pub stalls: Counter,
    /// How long each of those waits lasted.
    pub stall_seconds: Histogram,
    /// Streams sending a body now.
    pub open: Gauge,
    /// Body bytes sent to players.
    pub bytes: Counter,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        let latency = || Histogram::new(LATENCY_BUCKETS);
        StreamMetrics {
            first_byte: latency(),
            seek: latency(),
            stalls: Counter::default(),
            stall_seconds: latency(),
            open: Gauge::default(),
            bytes: Counter::default(),
        }
    }
}

/// The registry `/metrics` renders.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Every metric of the process, built once.
    registry: Arc<Registry>,
    /// The streams' own counters (shared with the registry).
    pub stream: StreamMetrics,
}

impl Metrics {
    /// Metrics over the torrents of `catalog` and the ring node in `chord`
    /// (read at each scrape: it may be joined after the server starts).
    pub fn new(catalog: Catalog, chord: Arc<OnceLock<ChordHandle>>) -> Metrics {
        let stream = StreamMetrics::default();
        let mut registry = Registry::with_prefix("songswarm");
        let s = &stream;
        registry.register(
            "stream_first_byte_seconds",
            "Time from a request at a song's start to its first body byte",
            s.first_byte.clone(),
        );
        registry.register(
            "stream_seek_seconds",
            "Time from a request inside a song (a seek) to its first body byte",
            s.seek.clone(),
        );
        registry.register(
            "stream_stalls",
            "Waits of a started stream for a piece not yet verified",
            s.stalls.clone(),
        );
        registry.register(
            "stream_stall_seconds",
            "Length of each stall",
            s.stall_seconds.clone(),
        );
        registry.register("streams_open", "Song streams sending now", s.open.clone());
        registry.register(
            "stream_bytes",
            "Song bytes sent to players",
            s.bytes.clone(),
        );
        registry.register_collector(Box::new(SwarmCollector { catalog }));
        registry.register_collector(Box::new(RingCollector { chord }));
        Metrics {
            registry: Arc::new(registry),
            stream,
        }
    }

    /// The text `/metrics` answers.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would be ours.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The label of a torrent's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TorrentLabel {
    /// The torrent's info-hash, in hex.
    info_hash: String,
}

/// Reads every torrent's published progress at scrape time.
#[derive(Debug)]
struct SwarmCollector {
    /// The torrents of the process.
    catalog: Catalog,
}

/// One per-torrent metric: name, help, type, and its value from progress.
type TorrentMetric = (
    &'static str,
    &'static str,
    MetricType,
    fn(&crate::swarm::coordinator::TorrentStats) -> u64,
);

const TORRENT_METRICS: [TorrentMetric; 8] = [
    (
        "downloaded_bytes",
        "Piece bytes received from peers",
        MetricType::Counter,
        |s| s.downloaded_bytes,
    ),
    (
        "uploaded_bytes",
        "Piece bytes sent to peers",
        MetricType::Counter,
        |s| s.uploaded_bytes,
    ),
    (
        "pieces_verified",
        "Pieces that passed their SHA-1 check in this run",
        MetricType::Counter,
        |s| u64::from(s.have_pieces.saturating_sub(s.resumed_pieces)),
    ),
    (
        "pieces_failed",
        "Pieces that failed their SHA-1 check",
        MetricType::Counter,
        |s| s.failed_pieces,
    ),
    (
        "pieces_have",
        "Verified pieces on disk",
        MetricType::Gauge,
        |s| u64::from(s.have_pieces),
    ),
    ("peers", "Peers connected now", MetricType::Gauge, |s| {
        s.peers as u64
    }),
    (
        "stream_late_pieces",
        "Pieces a stream needed before they verified (its first piece after an open or a seek, one per stall)",
        MetricType::Counter,
        |s| s.late_pieces,
    ),
    (
        "stream_rescued_blocks",
        "Streams' critical blocks asked of a second, quicker peer because the first was late",
        MetricType::Counter,
        |s| s.rescued_blocks,
    ),
];

impl Collector for SwarmCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let torrents: Vec<_> = self
            .catalog
            .list()
            .into_iter()
            .map(|e| {
                let label = TorrentLabel {
                    info_hash: e.manifest.info_hash.to_hex(),
                };
                (label, e.handle.stats.borrow().clone())
            })
            .collect();
        for (name, help, kind, value) in TORRENT_METRICS {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (label, stats) in &torrents {
                let metric = family.encode_family(label)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(value(stats)).encode(metric)?,
                    _ => ConstGauge::new(value(stats) as i64).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

/// Reads the ring node's counters at scrape time, once there is a node.
struct RingCollector {
    /// The process's Chord node, set when it joins.
    chord: Arc<OnceLock<ChordHandle>>,
}

impl std::fmt::Debug for RingCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let node = self.chord.get().map(|c| c.addr());
        f.debug_struct("RingCollector")
            .field("node", &node)
            .finish()
    }
}

impl Collector for RingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(node) = self.chord.get() else {
            return Ok(());
        };
        let m = node.metrics();
        let lookups = encoder.encode_descriptor(
            "ring_lookups",
            "Lookups that found their key's owner over the network",
            None,
            MetricType::Counter,
        )?;
        m.lookups.encode(lookups)?;
        let hops = encoder.encode_descriptor(
            "ring_lookup_hops",
            "Questions asked by lookups, one per hop (hops per lookup: this over ring_lookups)",
            None,
            MetricType::Counter,
        )?;
        m.lookup_hops.encode(hops)?;
        let quorum = encoder.encode_descriptor(
            "ring_quorum_ops",
            "Quorum reads (swarm lookups) and writes (announces, removals) by result",
            None,
            MetricType::Counter,
        )?;
        m.quorum.encode(quorum)?;
        let probes = encoder.encode_descriptor(
            "ring_probes",
            "Peers named by relayed swarm entries asked whether they share the info-hash, by verdict",
            None,
            MetricType::Counter,
        )?;
        m.probes.encode(probes)
    }
}
