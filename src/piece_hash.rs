//! SHA-1 of pieces, several at a time.
//!
//! One SHA-1 is a chain: every round waits on the one before. With the x86
//! SHA extensions the round instruction's latency is several times its
//! throughput, so a single chain leaves the unit mostly idle. Hashing up to
//! [`LANES`] independent pieces in lock-step fills it: on a Zen 4 core,
//! 1.9 GB/s for one piece, 3.3 GB/s for two and 4.5 GB/s for four. Hashing is
//! the largest single cost of a download (a third of both cores' time in the
//! transfer bench), which is why this does not simply call the `sha1` crate;
//! without the extensions it does, one piece at a time.
//!
//! A piece is given as its chunks in order (the blocks it arrived in, or one
//! buffer): any lengths; a 64-byte block that straddles two chunks is copied
//! into a small buffer of its own.

use sha1::{Digest, Sha1};

/// Most pieces hashed in lock-step.
pub const LANES: usize = 4;

/// The SHA-1 of each message, each given as its chunks in order.
pub fn digests<C: AsRef<[u8]>>(messages: &[&[C]]) -> Vec<[u8; 20]> {
    let mut out = vec![[0u8; 20]; messages.len()];
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        for (group, out) in messages.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let lanes = group.iter().map(|m| Lane::new(m)).collect();
            // SAFETY: `available` checked the CPU features `run` needs.
            unsafe { x86::run(lanes, out) };
        }
        return out;
    }
    for (m, o) in messages.iter().zip(&mut out) {
        *o = digest(m);
    }
    out
}

/// [`digests`] of messages that each lie in one buffer.
pub fn digests_of<B: AsRef<[u8]>>(buffers: &[B]) -> Vec<[u8; 20]> {
    let chunks: Vec<[&[u8]; 1]> = buffers.iter().map(|b| [b.as_ref()]).collect();
    let messages: Vec<&[&[u8]]> = chunks.iter().map(|c| &c[..]).collect();
    digests(&messages)
}

/// The SHA-1 of one message given as its chunks in order, with the sha1
/// crate (the fallback of [`digests`]).
fn digest<C: AsRef<[u8]>>(chunks: &[C]) -> [u8; 20] {
    let mut h = Sha1::new();
    for c in chunks {
        h.update(c.as_ref());
    }
    h.finalize().into()
}

/// SHA-1's initial state.
#[cfg(target_arch = "x86_64")]
const INITIAL: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// One message being hashed: where it stands in its chunks.
#[cfg(target_arch = "x86_64")]
struct Lane<'a, C> {
    /// The message's chunks.
    chunks: &'a [C],
    /// The chunk the next byte is in.
    chunk: usize,
    /// Offset of the next byte in that chunk.
    at: usize,
    /// Bytes not yet compressed.
    left: u64,
    /// Total length (for the padding).
    total: u64,
    /// The chaining state.
    state: [u32; 5],
    /// A 64-byte block copied together from two or more chunks.
    staged: [u8; 64],
}

/// What a lane gives to the next step.
#[cfg(target_arch = "x86_64")]
enum Next {
    /// This many whole blocks lie contiguous in the current chunk.
    Direct(usize),
    /// One block was copied into `staged`.
    Staged,
    /// Less than a block is left: the message ends.
    End,
}

#[cfg(target_arch = "x86_64")]
impl<'a, C: AsRef<[u8]>> Lane<'a, C> {
    fn new(chunks: &'a [C]) -> Lane<'a, C> {
        let total = chunks.iter().map(|c| c.as_ref().len() as u64).sum();
        Lane {
            chunks,
            chunk: 0,
            at: 0,
            left: total,
            total,
            state: INITIAL,
            staged: [0; 64],
        }
    }

    fn current(&self) -> &'a [u8] {
        &self.chunks[self.chunk].as_ref()[self.at..]
    }

    /// Skips exhausted chunks and says what the next step can take.
    fn prepare(&mut self) -> Next {
        while self.chunk < self.chunks.len() && self.current().is_empty() {
            self.chunk += 1;
            self.at = 0;
        }
        if self.left < 64 {
            return Next::End;
        }
        let here = self.current().len() / 64;
        if here > 0 {
            return Next::Direct(here);
        }
        self.copy_ahead(64);
        Next::Staged
    }

    /// Copies the next `n` bytes (at most 64, all present) into `staged`
    /// without moving.
    fn copy_ahead(&mut self, n: usize) {
        let (mut chunk, mut at, mut filled) = (self.chunk, self.at, 0);
        while filled < n {
            let c = &self.chunks[chunk].as_ref()[at..];
            let take = c.len().min(n - filled);
            self.staged[filled..filled + take].copy_from_slice(&c[..take]);
            filled += take;
            chunk += 1;
            at = 0;
        }
    }

    /// The bytes the step compresses: `blocks` blocks, from the chunk or from
    /// `staged`.
    fn input(&self, next: &Next, blocks: usize) -> &[u8] {
        match next {
            Next::Staged => &self.staged,
            _ => &self.current()[..blocks * 64],
        }
    }

    /// Moves past `n` compressed bytes.
    fn advance(&mut self, mut n: usize) {
        self.left -= n as u64;
        while n > 0 {
            let len = self.chunks[self.chunk].as_ref().len();
            let take = (len - self.at).min(n);
            self.at += take;
            n -= take;
            if self.at == len {
                self.chunk += 1;
                self.at = 0;
            }
        }
    }

    /// The last one or two blocks: the tail, the 0x80 byte, zeros and the
    /// length in bits, big-endian.
    fn padding(&mut self) -> ([u8; 128], usize) {
        let tail = self.left as usize;
        self.copy_ahead(tail);
        let mut last = [0u8; 128];
        last[..tail].copy_from_slice(&self.staged[..tail]);
        last[tail] = 0x80;
        let len = if tail < 56 { 64 } else { 128 };
        last[len - 8..len].copy_from_slice(&(self.total * 8).to_be_bytes());
        (last, len)
    }

    fn digest(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        for (o, s) in out.chunks_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_be_bytes());
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Lane, Next};

    /// True when this CPU has what [`run`] uses.
    pub(super) fn available() -> bool {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
    }

    /// Hashes the lanes in lock-step until each ends; digests go to `out` in
    /// lane order.
    ///
    /// # Safety
    /// The CPU must have the features [`available`] checks.
    pub(super) unsafe fn run<C: AsRef<[u8]>>(mut lanes: Vec<Lane<'_, C>>, out: &mut [[u8; 20]]) {
        debug_assert!(lanes.len() <= super::LANES && out.len() == lanes.len());
        let mut active: Vec<usize> = (0..lanes.len()).collect();
        while !active.is_empty() {
            let mut nexts = Vec::with_capacity(active.len());
            for &i in &active {
                nexts.push(lanes[i].prepare());
            }
            // Lanes whose message ends leave with their padding hashed.
            let mut k = 0;
            active.retain(|&i| {
                let end = matches!(nexts[k], Next::End);
                k += 1;
                if end {
                    let lane = &mut lanes[i];
                    let (last, len) = lane.padding();
                    let mut state = [lane.state];
                    compress(&mut state, [&last[..len]]);
                    lane.state = state[0];
                    out[i] = lane.digest();
                }
                !end
            });
            nexts.retain(|n| !matches!(n, Next::End));
            if active.is_empty() {
                break;
            }
            let blocks = nexts
                .iter()
                .map(|n| match n {
                    Next::Direct(b) => *b,
                    _ => 1,
                })
                .min()
                .unwrap_or(1);
            let mut states: Vec<[u32; 5]> = active.iter().map(|&i| lanes[i].state).collect();
            {
                let inputs: Vec<&[u8]> = active
                    .iter()
                    .zip(&nexts)
                    .map(|(&i, n)| lanes[i].input(n, blocks))
                    .collect();
                match inputs.len() {
                    1 => step::<1>(&mut states, &inputs),
                    2 => step::<2>(&mut states, &inputs),
                    3 => step::<3>(&mut states, &inputs),
                    _ => step::<4>(&mut states, &inputs),
                }
            }
            for (&i, s) in active.iter().zip(states) {
                lanes[i].state = s;
                lanes[i].advance(blocks * 64);
            }
        }
    }

    /// `compress` over `N` lanes given as slices.
    unsafe fn step<const N: usize>(states: &mut [[u32; 5]], inputs: &[&[u8]]) {
        let mut s: [[u32; 5]; N] = std::array::from_fn(|i| states[i]);
        compress(&mut s, std::array::from_fn(|i| inputs[i]));
        states[..N].copy_from_slice(&s);
    }

    /// Compresses the blocks of `N` messages into their states, the same
    /// number of 64-byte blocks from each, interleaving the lanes round by
    /// round so their chains overlap.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress<const N: usize>(state: &mut [[u32; 5]; N], data: [&[u8]; N]) {
        let blocks = data[0].len() / 64;
        for d in &data {
            assert_eq!(d.len(), blocks * 64, "lanes of unequal length");
        }
        // Reverses the bytes of the whole vector: big-endian words, in the
        // order the SHA instructions want them.
        let reverse = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
        let mut abcd = [_mm_setzero_si128(); N];
        let mut e = [_mm_setzero_si128(); N];
        for l in 0..N {
            let words = _mm_loadu_si128(state[l].as_ptr().cast());
            abcd[l] = _mm_shuffle_epi32(words, 0x1B);
            e[l] = _mm_set_epi32(state[l][4] as i32, 0, 0, 0);
        }
        for b in 0..blocks {
            let (abcd_before, e_before) = (abcd, e);
            // The last four message-schedule vectors of each lane, and each
            // lane's ABCD before its latest four rounds.
            let mut w = [[_mm_setzero_si128(); 4]; N];
            let mut prev = [_mm_setzero_si128(); N];
            // Rounds 4i..4i+3 with round function `f`.
            macro_rules! four_rounds {
                ($i:expr, $f:expr) => {
                    for l in 0..N {
                        let wi = if $i < 4 {
                            let p = data[l][b * 64 + $i * 16..].as_ptr().cast();
                            _mm_shuffle_epi8(_mm_loadu_si128(p), reverse)
                        } else {
                            let m = _mm_sha1msg1_epu32(w[l][$i % 4], w[l][($i + 1) % 4]);
                            let m = _mm_xor_si128(m, w[l][($i + 2) % 4]);
                            _mm_sha1msg2_epu32(m, w[l][($i + 3) % 4])
                        };
                        w[l][$i % 4] = wi;
                        let ei = if $i == 0 {
                            _mm_add_epi32(e[l], wi)
                        } else {
                            _mm_sha1nexte_epu32(prev[l], wi)
                        };
                        prev[l] = abcd[l];
                        abcd[l] = _mm_sha1rnds4_epu32(abcd[l], ei, $f);
                    }
                };
            }
            four_rounds!(0, 0);
            four_rounds!(1, 0);
            four_rounds!(2, 0);
            four_rounds!(3, 0);
            four_rounds!(4, 0);
            four_rounds!(5, 1);
            four_rounds!(6, 1);
            four_rounds!(7, 1);
            four_rounds!(8, 1);
            four_rounds!(9, 1);
            four_rounds!(10, 2);
            four_rounds!(11, 2);
            four_rounds!(12, 2);
            four_rounds!(13, 2);
            four_rounds!(14, 2);
            four_rounds!(15, 3);
            four_rounds!(16, 3);
            four_rounds!(17, 3);
            four_rounds!(18, 3);
            four_rounds!(19, 3);
            for l in 0..N {
                e[l] = _mm_sha1nexte_epu32(prev[l], e_before[l]);
                abcd[l] = _mm_add_epi32(abcd[l], abcd_before[l]);
            }
        }
        for l in 0..N {
            let mut words = [0u32; 4];
            _mm_storeu_si128(words.as_mut_ptr().cast(), _mm_shuffle_epi32(abcd[l], 0x1B));
            state[l][..4].copy_from_slice(&words);
            state[l][4] = _mm_extract_epi32(e[l], 3) as u32;
        }
    }
}

#[cfg(test)]
mod tests;
