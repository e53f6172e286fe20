//! The progress bar of a download: on stderr, only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::swarm::coordinator::TorrentStats;

/// A live progress bar fed from a torrent's stats (or nothing when quiet).
pub struct Progress {
    /// The bar and the task updating it; None when stderr is not a terminal.
    inner: Option<(ProgressBar, JoinHandle<()>)>,
}

impl Progress {
    /// Starts the bar for torrent `name`.
    pub fn start(stats: watch::Receiver<TorrentStats>, name: String) -> Progress {
        Progress::start_in(None, stats, name)
    }

    /// Starts the bar as one of several shown together in `multi`.
    pub fn start_in(
        multi: Option<&MultiProgress>,
        mut stats: watch::Receiver<TorrentStats>,
        name: String,
    ) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { inner: None };
        }
        let total = stats.borrow().total_bytes;
        let mut bar = ProgressBar::new(total);
        if let Some(multi) = multi {
            bar = multi.add(bar);
        }
        let style = ProgressStyle::with_template(
            "{msg:20!} [{bar:30}] {percent:>3}% {binary_bytes_per_sec:>12} {prefix} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(name);
        let b = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                {
                    let s = stats.borrow_and_update();
                    let per_piece = s.total_bytes / u64::from(s.piece_count.max(1));
                    b.set_position((u64::from(s.have_pieces) * per_piece).min(s.total_bytes));
                    b.set_prefix(format!("{} peers", s.peers));
                }
                if stats.changed().await.is_err() {
                    break;
                }
            }
        });
        Progress {
            inner: Some((bar, task)),
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some((bar, task)) = self.inner {
            task.abort();
            bar.finish_and_clear();
        }
    }
}
