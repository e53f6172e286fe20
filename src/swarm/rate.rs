//! Process-wide upload and download caps (token buckets over bytes).
//!
//! The upload bucket serves its waiting senders in ticket order rather than
//! all at once. A connection takes a new ticket when it starts sending a new
//! piece, so under a cap the process sends one piece at a time at the full
//! rate (round robin over pieces) instead of every piece at a fraction of it.
//! A piece can only be passed on once it is complete, so finishing pieces one
//! after another lets the swarm forward each of them sooner.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

/// The caps shared by every connection of the process.
#[derive(Debug, Default)]
pub struct RateLimits {
    /// Upload bucket (None: no cap).
    upload: Option<OrderedBucket>,
    /// Download bucket (None: no cap).
    download: Option<DefaultDirectRateLimiter>,
    /// The next upload ticket.
    tickets: AtomicU64,
}

/// The burst of a bucket refilled at `rate` bytes/s: an eighth of a second
/// (at least a few blocks), so the cap holds over short windows too.
fn burst(rate: u32) -> u32 {
    (rate / 8).max(64 * 1024)
}

fn bucket(rate: u64) -> DefaultDirectRateLimiter {
    let rate = rate.clamp(1, u64::from(u32::MAX)) as u32;
    let quota = Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst(rate)).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct(quota)
}

impl RateLimits {
    /// Caps in bytes per second (None: unlimited).
    pub fn new(upload: Option<u64>, download: Option<u64>) -> RateLimits {
        RateLimits {
            upload: upload.map(OrderedBucket::new),
            download: download.map(bucket),
            tickets: AtomicU64::new(0),
        }
    }

    /// True when uploads are capped.
    pub fn upload_capped(&self) -> bool {
        self.upload.is_some()
    }

    /// A new upload ticket, served after every ticket taken before it.
    pub fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits until `bytes` may be sent; among waiting senders the smallest
    /// ticket goes first.
    pub async fn upload(&self, ticket: u64, bytes: usize) {
        if let Some(b) = &self.upload {
            b.acquire(ticket, bytes).await;
        }
    }

    /// Waits until `bytes` may be received.
    pub async fn download(&self, bytes: usize) {
        let Some(bucket) = &self.download else { return };
        let Some(n) = NonZeroU32::new(bytes.min(u32::MAX as usize) as u32) else {
            return;
        };
        // A request above the burst can never be granted whole; it never
        // happens for 16 KiB blocks against a 64 KiB minimum burst, but stay safe.
        if bucket.until_n_ready(n).await.is_err() {
            let _ = bucket.until_ready().await;
        }
    }
}

/// A token bucket whose waiters are served in (ticket, arrival) order.
#[derive(Debug)]
struct OrderedBucket {
    /// Refill rate, bytes per second.
    rate: f64,
    /// Most tokens kept.
    burst: f64,
    /// Tokens and waiters.
    state: Mutex<BucketState>,
    /// Breaks ties between waiters with one ticket (arrival order).
    arrivals: AtomicU64,
}

#[derive(Debug)]
struct BucketState {
    /// Bytes that may be sent now.
    tokens: f64,
    /// When `tokens` was last refilled.
    at: Instant,
    /// Waiting senders by (ticket, arrival); the first is the only one that
    /// may take tokens, and each is woken when it becomes the first.
    waiters: BTreeMap<(u64, u64), Arc<Notify>>,
}

impl OrderedBucket {
    fn new(rate: u64) -> OrderedBucket {
        let rate = rate.clamp(1, u64::from(u32::MAX)) as u32;
        let burst = f64::from(burst(rate));
        OrderedBucket {
            rate: f64::from(rate),
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                at: Instant::now(),
                waiters: BTreeMap::new(),
            }),
            arrivals: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BucketState> {
        // The state stays consistent under every early exit, so a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn acquire(&self, ticket: u64, bytes: usize) {
        let need = (bytes as f64).min(self.burst);
        let key = (ticket, self.arrivals.fetch_add(1, Ordering::Relaxed));
        let notify = Arc::new(Notify::new());
        self.lock().waiters.insert(key, notify.clone());
        // Removes the entry and wakes the next waiter however this ends
        // (granted, or the sending task dropped while waiting).
        let _leave = Leave { bucket: self, key };
        loop {
            let deadline = {
                let mut s = self.lock();
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(s.at).as_secs_f64();
                s.tokens = (s.tokens + elapsed * self.rate).min(self.burst);
                s.at = now;
                if s.waiters.keys().next() != Some(&key) {
                    None
                } else if s.tokens >= need {
                    s.tokens -= need;
                    return;
                } else {
                    let wait = (need - s.tokens) / self.rate;
                    Some(now + Duration::from_secs_f64(wait))
                }
            };
            match deadline {
                Some(d) => sleep_until(d).await,
                None => notify.notified().await,
            }
        }
    }
}

/// Takes a waiter out of its bucket and wakes the next one.
struct Leave<'a> {
    bucket: &'a OrderedBucket,
    key: (u64, u64),
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut s = self.bucket.lock();
        s.waiters.remove(&self.key);
        if let Some(next) = s.waiters.values().next() {
            // A stored permit: the next waiter sees it even if it is not
            // waiting on the notification yet.
            next.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// Under a cap, a smaller ticket that arrives later is served before the
    /// waiters queued ahead of it, and the rate holds.
    #[tokio::test(start_paused = true)]
    async fn smaller_ticket_goes_first_at_the_capped_rate() {
        let limits = Arc::new(RateLimits::new(Some(1_000_000), None));
        let first = limits.ticket();
        let later = limits.ticket();
        // Empty the burst so everyone waits.
        limits.upload(first, 125_000).await;
        let order = Arc::new(StdMutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (name, ticket) in [("later", later), ("first", first)] {
            let (limits, order) = (limits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..4 {
                    limits.upload(ticket, 100_000).await;
                    order.lock().unwrap().push(name);
                }
            }));
            // "later" is already waiting when "first" arrives.
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(
            order,
            ["first", "first", "first", "first", "later", "later", "later", "later"]
        );
        // 800 kB at 1 MB/s after the burst was spent.
        let took = start.elapsed().as_secs_f64();
        assert!((0.79..0.85).contains(&took), "took {took} s");
    }

    /// A waiter dropped while first in line passes its turn on.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_does_not_block_the_next() {
        let limits = Arc::new(RateLimits::new(Some(1_000_000), None));
        let a = limits.ticket();
        let b = limits.ticket();
        limits.upload(a, 125_000).await;
        let l = limits.clone();
        let stuck = tokio::spawn(async move { l.upload(a, 100_000).await });
        tokio::task::yield_now().await;
        let l = limits.clone();
        let next = tokio::spawn(async move { l.upload(b, 100_000).await });
        tokio::task::yield_now().await;
        stuck.abort();
        tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("the second waiter is served")
            .unwrap();
    }

    /// A writer stops waiting whenever it has a message of its own to send,
    /// then waits again: its ticket keeps its place in line.
    #[tokio::test(start_paused = true)]
    async fn a_wait_given_up_and_resumed_keeps_its_place() {
        let limits = Arc::new(RateLimits::new(Some(1_000_000), None));
        let a = limits.ticket();
        let b = limits.ticket();
        limits.upload(a, 125_000).await;
        let order = Arc::new(StdMutex::new(Vec::new()));
        let (l, o) = (limits.clone(), order.clone());
        let other = tokio::spawn(async move {
            l.upload(b, 100_000).await;
            o.lock().unwrap().push("b");
        });
        tokio::task::yield_now().await;
        let wait = limits.upload(a, 100_000);
        assert!(
            tokio::time::timeout(Duration::from_millis(10), wait)
                .await
                .is_err(),
            "no allowance yet"
        );
        limits.upload(a, 100_000).await;
        order.lock().unwrap().push("a");
        other.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["a", "b"]);
    }
}
