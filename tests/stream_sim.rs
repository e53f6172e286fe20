//! Play-position priority in the pure scheduler, under a virtual clock:
//! players read songs at their real-time rate from seeds with capped,
//! delayed links (see `support/stream_net.rs`), and count stalls.
//! Run with `--nocapture` to see the numbers.

#[path = "support/stream_net.rs"]
mod stream_net;

use std::time::Duration;

use songswarm::config::SwarmConfig;
use songswarm::manifest::default_song_piece_length;
use songswarm::swarm::scheduler::READ_AHEAD;
use stream_net::{Net, SeedSpec};

/// A 320 kbit/s song: bytes per second of audio.
const BYTE_RATE: u64 = 40_000;
/// Its length: a minute of audio.
const SONG: u64 = 60 * BYTE_RATE;
/// How far ahead of the play position a player's body reads.
const BUFFER: Duration = Duration::from_secs(10);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn piece_length() -> u64 {
    default_song_piece_length(SONG)
}

/// A fast seed and one that crawls (a 16 KiB block takes it 1.6 s), and
/// one that is quick at first, so it gets the stream's critical blocks,
/// and then nearly stops. Played with `cfg`: (stalls, stall time, first
/// byte, rescued blocks).
fn slow_peer_run(cfg: SwarmConfig) -> (u32, Duration, Duration, u64) {
    let fast = SeedSpec::new(3.0 * BYTE_RATE as f64);
    let crawls = SeedSpec::new(0.25 * BYTE_RATE as f64);
    let fades = SeedSpec {
        slows: Some((secs(8), 0.05 * BYTE_RATE as f64)),
        ..SeedSpec::new(4.0 * BYTE_RATE as f64)
    };
    let mut net = Net::new(&[fast, crawls, fades]);
    let song = net.add_song(SONG, piece_length(), cfg);
    let player = net.play(song, 0, BYTE_RATE, BUFFER);
    assert!(net.run_until_played(secs(240)), "the song was played out");
    let p = &net.players[player];
    let first = p.first_byte.expect("a first byte");
    let rescued = net.songs[song].sched.rescued_blocks();
    (p.stalls, p.stall_time, first, rescued)
}

#[test]
fn a_slow_peer_holding_the_next_critical_piece_does_not_stall_playback() {
    let (stalls, stalled, first, rescued) = slow_peer_run(SwarmConfig::default());
    eprintln!(
        "with rescue: {stalls} stalls, {stalled:?} stalled, first byte {first:?}, \
         {rescued} blocks asked of a second peer"
    );
    let off = SwarmConfig {
        critical_duplicates: false,
        ..Default::default()
    };
    let (stalls_off, stalled_off, first_off, _) = slow_peer_run(off);
    eprintln!("without: {stalls_off} stalls, {stalled_off:?} stalled, first byte {first_off:?}");
    assert!(
        stalls_off > 0,
        "the slow peers stall playback without a second request (else this test tests nothing)"
    );
    assert_eq!(stalls, 0, "stalled {stalled:?}");
    assert!(
        rescued > 0,
        "late critical blocks were asked of a quicker peer"
    );
    assert!(first < Duration::from_secs(1), "first byte after {first:?}");
}

#[test]
fn a_seek_into_an_unfetched_region_gets_its_piece_before_anything_else() {
    // A three-minute song from two seeds at 1.5x its rate each: after six
    // seconds most of it is still to fetch.
    let length = 180 * BYTE_RATE;
    let seed = SeedSpec::new(1.5 * BYTE_RATE as f64);
    let mut net = Net::new(&[seed.clone(), seed]);
    let song = net.add_song(
        length,
        default_song_piece_length(length),
        SwarmConfig::default(),
    );
    let player = net.play(song, 0, BYTE_RATE, BUFFER);
    net.run_for(secs(6));
    let s = &net.songs[song];
    let asked = |i: u32| s.requests.iter().any(|(_, r, _)| r.index == i);
    let piece = (s.piece_at(length * 7 / 10)..s.geometry.piece_count)
        .find(|&i| !asked(i))
        .expect("an unfetched piece past 70%");
    let target = s.geometry.piece_offset(piece) + 1000;
    let sought = net.now;
    let asked_before = s.requests.len();
    let had: Vec<u32> = (0..s.geometry.piece_count).filter(|&i| s.has(i)).collect();
    net.seek(player, target);
    net.run_for(secs(5));
    let s = &net.songs[song];
    let latency = net.players[player].seeks[0];
    eprintln!(
        "seek to piece {piece} of {} ({} KiB pieces): first byte after {latency:?}, \
         {} requests cancelled to make way",
        s.geometry.piece_count,
        s.geometry.piece_length / 1024,
        s.sched.preempted_requests()
    );
    // Its blocks were all asked for at the seek, each first in its seed's
    // new requests.
    let after = &s.requests[asked_before..];
    let blocks = s.geometry.block_count(piece) as usize;
    let at_seek = after
        .iter()
        .filter(|(t, r, _)| *t == sought && r.index == piece)
        .count();
    assert_eq!(at_seek, blocks, "every block asked for at the seek");
    for seed in [1, 2] {
        let to_seed: Vec<u32> = after
            .iter()
            .filter(|(_, _, k)| *k == seed)
            .map(|(_, r, _)| r.index)
            .collect();
        let lead = to_seed.iter().take_while(|&&i| i == piece).count();
        let total = to_seed.iter().filter(|&&i| i == piece).count();
        assert_eq!(
            lead, total,
            "seed {seed} was asked for something else first: {to_seed:?}"
        );
    }
    // It verifies before any piece first asked for after the seek.
    let done = s.verified_at[piece as usize].expect("the sought piece verified");
    for i in 0..s.geometry.piece_count {
        let first_ask = s.requests.iter().find(|(_, r, _)| r.index == i);
        if i == piece || had.contains(&i) || first_ask.is_none_or(|(t, _, _)| *t < sought) {
            continue;
        }
        if let Some(at) = s.verified_at[i as usize] {
            assert!(at >= done, "piece {i} verified before the sought piece");
        }
    }
    // It waits for no more than the blocks already on their way (one per
    // seed): the piece and a block at the two seeds' rate, plus a round
    // trip and a little.
    let bytes = s.geometry.piece_length + 2 * 16 * 1024;
    let bound = Duration::from_secs_f64(bytes as f64 / (3.0 * BYTE_RATE as f64) + 0.1);
    assert!(latency < bound, "seek latency {latency:?} over {bound:?}");
    assert_eq!(net.players[player].stalls, 0);
}

#[test]
fn two_streams_of_different_songs_share_fairly() {
    // Three seeds hold both songs, each uploading 1.5x one song's rate:
    // 4.5x in all for two songs played at 1x each.
    let seed = SeedSpec::new(1.5 * BYTE_RATE as f64);
    let mut net = Net::new(&[seed.clone(), seed.clone(), seed]);
    let a = net.add_song(SONG, piece_length(), SwarmConfig::default());
    let b = net.add_song(SONG, piece_length(), SwarmConfig::default());
    let pa = net.play(a, 0, BYTE_RATE, BUFFER);
    net.run_for(secs(5));
    let (a5, b5) = (net.songs[a].received_total(), net.songs[b].received_total());
    let pb = net.play(b, 0, BYTE_RATE, BUFFER);
    net.run_for(secs(15));
    let (a20, b20) = (net.songs[a].received_total(), net.songs[b].received_total());
    assert!(
        net.run_until_played(secs(240)),
        "both songs were played out"
    );
    let share = (b20 - b5) as f64 / ((a20 - a5) + (b20 - b5)) as f64;
    for (name, p) in [("a", &net.players[pa]), ("b", &net.players[pb])] {
        eprintln!(
            "song {name}: first byte {:?}, {} stalls ({:?})",
            p.first_byte, p.stalls, p.stall_time
        );
    }
    eprintln!("song b's share of the bytes while both played: {share:.2}");
    // Each waits for its first piece behind at most a block per seed, at
    // its half of each seed's upload, plus a round trip and a little. A
    // block is not split: a seed sends its share of the piece's blocks
    // (all of a one-block piece) after the block it is sending.
    let blocks = piece_length().div_ceil(16 * 1024);
    let bytes = (blocks.div_ceil(3) + 1) * 16 * 1024;
    let bound = Duration::from_secs_f64(bytes as f64 / (0.75 * BYTE_RATE as f64) + 0.1);
    for p in [&net.players[pa], &net.players[pb]] {
        assert_eq!(p.stalls, 0, "stalled {:?}", p.stall_time);
        let first = p.first_byte.expect("a first byte");
        assert!(first < bound, "first byte after {first:?}, over {bound:?}");
    }
    assert!(
        (0.4..=0.6).contains(&share),
        "the later song got {share:.2} of the bytes"
    );
}

#[test]
fn two_streams_of_one_song_both_play_on() {
    // Two seeds at 1.2x the song's rate each; one listener at the start,
    // another from the middle three seconds later.
    let seed = SeedSpec::new(1.2 * BYTE_RATE as f64);
    let mut net = Net::new(&[seed.clone(), seed]);
    let song = net.add_song(SONG, piece_length(), SwarmConfig::default());
    let first = net.play(song, 0, BYTE_RATE, BUFFER);
    net.run_for(secs(3));
    let second = net.play(song, SONG / 2, BYTE_RATE, BUFFER);
    assert!(net.run_until_played(secs(240)), "both were played out");
    for (name, p) in [
        ("start", &net.players[first]),
        ("middle", &net.players[second]),
    ] {
        eprintln!(
            "from the {name}: first byte {:?}, {} stalls ({:?})",
            p.first_byte, p.stalls, p.stall_time
        );
        assert_eq!(p.stalls, 0, "stalled {:?}", p.stall_time);
    }
}

#[test]
fn past_the_read_ahead_the_song_still_downloads_rarest_first() {
    // A three-minute song in 32 KiB pieces, 0.8 s of audio each: in 20 s
    // the read-ahead (30 s) reaches no further than piece 62. Pieces
    // 150..155 are on one seed only, the rest on both.
    let (length, piece) = (180 * BYTE_RATE, 32 * 1024);
    let seed = SeedSpec::new(3.0 * BYTE_RATE as f64);
    let lacking = SeedSpec {
        lacks: Some(150..155),
        ..seed.clone()
    };
    let mut net = Net::new(&[seed, lacking]);
    let song = net.add_song(length, piece, SwarmConfig::default());
    net.play(song, 0, BYTE_RATE, BUFFER);
    net.run_for(secs(20));
    let s = &net.songs[song];
    let last = s.geometry.piece_count - 1;
    let reach = ((20.0 + READ_AHEAD.as_secs_f64()) * BYTE_RATE as f64 / piece as f64) as u32;
    // The pieces no stream needed soon, in the order first asked of the
    // seed that has them all (the other one cannot help with the rare ones).
    let mut beyond: Vec<u32> = Vec::new();
    for (_, r, _) in s.requests.iter().filter(|(_, _, k)| *k == 1) {
        if r.index > reach && r.index != last && !beyond.contains(&r.index) {
            beyond.push(r.index);
        }
    }
    eprintln!(
        "past the read-ahead, asked for first: {:?}",
        &beyond[..beyond.len().min(8)]
    );
    assert!(beyond.len() >= 5, "the rest of the song was asked for");
    let mut first = beyond[..5].to_vec();
    first.sort_unstable();
    assert_eq!(first, (150..155).collect::<Vec<u32>>(), "the rarest first");
}
