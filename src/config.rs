//! Every tunable with its default, in one place.
//!
//! Each subsystem owns one struct here; the CLI builds them from flags and
//! the tests build them directly (often with shorter timers).

use std::time::Duration;

/// Chord ring and replicated swarm-list settings (DESIGN.md §4).
#[derive(Clone, Debug)]
pub struct ChordConfig {
    /// Replicas per key (N).
    pub replicas: usize,
    /// Replicas that must store an announce before it is acknowledged (W).
    pub write_quorum: usize,
    /// Replica answers merged by a lookup (R). W + R > N.
    pub read_quorum: usize,
    /// Successor list length r (≥ max(N + 2, 2·log2 ring size)).
    pub successor_list_len: usize,
    /// Mean period of stabilize (jittered).
    pub stabilize_interval: Duration,
    /// Mean period of the finger refresh (one finger per tick, jittered).
    pub fix_finger_interval: Duration,
    /// Period of the key push to the replica set (anti-entropy).
    pub replicate_interval: Duration,
    /// Period of the self-lookup through past contacts (partition healing).
    pub rejoin_interval: Duration,
    /// Time-out of one RPC.
    pub rpc_timeout: Duration,
    /// Maximum hops of one lookup before it fails.
    pub max_hops: usize,
    /// Life of an announce on the storing replica's clock.
    pub announce_ttl: Duration,
    /// Most peers kept per key.
    pub max_peers_per_key: usize,
    /// Most keys one source address may hold entries for.
    pub max_keys_per_source: usize,
    /// Most entries one source address may hold in one key's list.
    pub max_peers_per_key_per_source: usize,
    /// Most entries one node holds over all keys and sources.
    pub max_items_per_node: usize,
    /// Requests one source address may make of a node per second (a
    /// burst of as many is allowed); beyond it they go unanswered.
    pub max_requests_per_source: u32,
    /// Largest Chord frame accepted, in bytes.
    pub max_frame: usize,
    /// Most open connections to other nodes; the least recently used is
    /// closed beyond it (keeps file descriptors bounded in big rings).
    pub max_connections: usize,
    /// A connection unused this long is closed.
    pub idle_timeout: Duration,
    /// Most probes of one target IP address per `probe_window`: a relayed
    /// swarm entry of a third party is checked by asking its address
    /// (see `chord::probes`), and no relay may make a replica knock on one
    /// address more often than this.
    pub probes_per_ip: u32,
    /// The window of `probes_per_ip`.
    pub probe_window: Duration,
    /// Most probes in flight at once (the node asks no more; the driver
    /// runs no more).
    pub max_outstanding_probes: usize,
    /// Most probe verdicts remembered (each stands for `announce_ttl`).
    pub max_probe_verdicts: usize,
    /// Longest one probe (connect and BitTorrent handshake) may take; no
    /// answer by then keeps the entry.
    pub probe_timeout: Duration,
}

impl Default for ChordConfig {
    fn default() -> Self {
        ChordConfig {
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
            successor_list_len: 8,
            stabilize_interval: Duration::from_millis(500),
            fix_finger_interval: Duration::from_millis(250),
            replicate_interval: Duration::from_secs(5),
            rejoin_interval: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(2),
            max_hops: 32,
            announce_ttl: Duration::from_secs(30 * 60),
            max_peers_per_key: 200,
            max_keys_per_source: 1000,
            max_peers_per_key_per_source: 16,
            max_items_per_node: 100_000,
            max_requests_per_source: 2000,
            max_frame: 1 << 20,
            max_connections: 64,
            idle_timeout: Duration::from_secs(30),
            probes_per_ip: 3,
            probe_window: Duration::from_secs(60),
            max_outstanding_probes: 32,
            max_probe_verdicts: 10_000,
            probe_timeout: Duration::from_secs(5),
        }
    }
}

/// Peer-wire, scheduler and storage settings (DESIGN.md §3).
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// Most simultaneous peer connections per torrent. When they are all
    /// taken, a new connection takes the slot of an idle peer (see
    /// `idle_evict_after`), or is refused.
    pub max_peers: usize,
    /// Most connections per torrent from one IP address (dialled and
    /// accepted together), so that one host cannot take every slot.
    pub max_peers_per_ip: usize,
    /// A peer that moved no piece data either way for this long, and that
    /// neither wants our pieces nor has one we want, gives its slot to a new
    /// connection when every slot is taken.
    pub idle_evict_after: Duration,
    /// The same for a peer that is interested, or interesting, but with
    /// which no piece data moved for this long (it may be waiting for an
    /// unchoke, so it is given longer).
    pub stalled_evict_after: Duration,
    /// Upload cap in bytes per second over the whole process (None: no cap).
    pub max_upload_rate: Option<u64>,
    /// Download cap in bytes per second over the whole process (None: no cap).
    pub max_download_rate: Option<u64>,
    /// Regular unchoke slots (tit-for-tat).
    pub unchoke_slots: usize,
    /// How often the choker re-evaluates.
    pub rechoke_interval: Duration,
    /// How often the optimistic unchoke rotates.
    pub optimistic_interval: Duration,
    /// Seconds of data to keep requested from each peer at its measured rate.
    pub pipeline_seconds: f64,
    /// First request window of a peer before its rate is measured; it grows
    /// by one per block delivered (doubling every round trip).
    pub initial_pipeline: usize,
    /// Fewest requests kept in flight to an unchoked peer.
    pub min_pipeline: usize,
    /// Most requests kept in flight to one peer.
    pub max_pipeline: usize,
    /// A request unanswered this long is re-assigned.
    pub request_timeout: Duration,
    /// Whether a peer that starts with every piece announces them peer by
    /// peer (super-seeding) instead of sending its whole bitfield.
    pub super_seed: SuperSeedMode,
    /// Most bytes of complete pieces waiting for their hash check before no
    /// new piece is started (bounds memory when hashing is slower than the
    /// network); one piece may always wait, however long.
    pub max_verifying_bytes: u64,
    /// Depth of each peer's command queue; a peer that fills it is dropped.
    pub peer_queue: usize,
    /// A stream's critical block that is late at its peer is asked of a
    /// quicker peer too (off only to measure what that buys).
    pub critical_duplicates: bool,
    /// Speak the fast extension (BEP 6) with peers that do: have-all and
    /// have-none, and a reject for every request we will not serve.
    pub fast_extension: bool,
    /// Most song files the process keeps open at once, over all its
    /// torrents (a least-recently-used cache; files are opened again when
    /// needed). Never more than a quarter of the open-file limit.
    pub max_open_files: usize,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            max_peers: 50,
            max_peers_per_ip: 16,
            idle_evict_after: Duration::from_secs(5),
            stalled_evict_after: Duration::from_secs(30),
            max_upload_rate: None,
            max_download_rate: None,
            unchoke_slots: 4,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            pipeline_seconds: 3.0,
            initial_pipeline: 8,
            min_pipeline: 4,
            max_pipeline: 512,
            request_timeout: Duration::from_secs(20),
            super_seed: SuperSeedMode::Auto,
            max_verifying_bytes: 16 << 20,
            peer_queue: 1024,
            critical_duplicates: true,
            fast_extension: true,
            max_open_files: crate::storage::handles::DEFAULT_CAPACITY,
        }
    }
}

/// When a seed super-seeds (announces its pieces one peer at a time so that
/// leechers trade among themselves, see `swarm::scheduler`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SuperSeedMode {
    /// Only while several leechers are there: a peer that arrives alone
    /// gets the whole bitfield, and every peer gets every piece announced
    /// once at most one leecher is left.
    #[default]
    Auto,
    /// Always (still: a peer that does not report the pieces it completes
    /// gets every piece announced after a short while).
    On,
    /// Never: every peer gets the whole bitfield.
    Off,
}

/// How a seeding or leeching process uses the ring as its tracker (DESIGN.md §4).
#[derive(Clone, Debug)]
pub struct AnnounceConfig {
    /// Period of the swarm lookup while downloading (new peers arrive).
    pub requery_leeching: Duration,
    /// Period of the swarm lookup once complete (to meet new leechers).
    pub requery_seeding: Duration,
    /// Wait before retrying a failed announce or lookup (ring still forming).
    pub retry: Duration,
    /// Longest a clean exit waits for its removal to be stored.
    pub remove_timeout: Duration,
    /// Most announces and swarm lookups a second over all torrents of the
    /// process (a library of 10,000 songs spreads its announces out).
    pub max_ops_per_second: u32,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            requery_leeching: Duration::from_secs(5),
            requery_seeding: Duration::from_secs(15),
            retry: Duration::from_secs(2),
            remove_timeout: Duration::from_secs(5),
            max_ops_per_second: 50,
        }
    }
}
