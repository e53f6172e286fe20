//! Process-wide upload and download caps (token buckets over bytes).

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The caps shared by every connection of the process.
#[derive(Debug, Default)]
pub struct RateLimits {
    /// Upload bucket (None: no cap).
    upload: Option<DefaultDirectRateLimiter>,
    /// Download bucket (None: no cap).
    download: Option<DefaultDirectRateLimiter>,
}

/// A bucket refilled at `rate` bytes/s; the burst is an eighth of a second
/// (at least a few blocks), so the cap holds over short windows too.
fn bucket(rate: u64) -> DefaultDirectRateLimiter {
    let rate = rate.clamp(1, u64::from(u32::MAX)) as u32;
    let burst = (rate / 8).max(64 * 1024);
    let quota = Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct(quota)
}

impl RateLimits {
    /// Caps in bytes per second (None: unlimited).
    pub fn new(upload: Option<u64>, download: Option<u64>) -> RateLimits {
        RateLimits {
            upload: upload.map(bucket),
            download: download.map(bucket),
        }
    }

    /// True when uploads are capped.
    pub fn upload_capped(&self) -> bool {
        self.upload.is_some()
    }

    /// Waits until `bytes` may be sent.
    pub async fn upload(&self, bytes: usize) {
        wait(self.upload.as_ref(), bytes).await
    }

    /// Waits until `bytes` may be received.
    pub async fn download(&self, bytes: usize) {
        wait(self.download.as_ref(), bytes).await
    }
}

async fn wait(bucket: Option<&DefaultDirectRateLimiter>, bytes: usize) {
    let Some(bucket) = bucket else { return };
    let Some(n) = NonZeroU32::new(bytes.min(u32::MAX as usize) as u32) else {
        return;
    };
    // A request above the burst can never be granted whole; it never happens
    // for 16 KiB blocks against a 64 KiB minimum burst, but stay safe.
    if bucket.until_n_ready(n).await.is_err() {
        let _ = bucket.until_ready().await;
    }
}
