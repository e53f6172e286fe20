//! The progress bar of a download: on stderr, only when stderr is a terminal.
//! Rates are in decimal MB/s, as in the `leech` summary and the demo report.
//! Otherwise a download that cannot reach any peer says so once per stall,
//! so a user of a script or a log is not left looking at silence.

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
    /// Starts the bar for torrent `name`; without a terminal, the stall
    /// reports instead.
    pub fn start(stats: watch::Receiver<TorrentStats>, name: String) -> Progress {
        if std::io::stderr().is_terminal() {
            return Progress::start_in(None, stats, name);
        }
        let task = tokio::spawn(report_stalls(stats));
        Progress {
            inner: Some((ProgressBar::hidden(), task)),
        }
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
            "{msg:20!} [{bar:30}] {percent:>3}% {decimal_bytes_per_sec:>11} {prefix} ETA {eta}",
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
                    b.set_prefix(peers_text(&s));
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

/// The bar's peer count, with why it is zero when a dial failed.
fn peers_text(s: &TorrentStats) -> String {
    match (&s.unreachable, s.peers) {
        (Some(why), 0) => format!("0 peers (last try {why})"),
        _ => format!("{} peers", s.peers),
    }
}

/// Prints one line each time the download is left with no peer and a dial
/// has failed, until a peer connects again.
async fn report_stalls(mut stats: watch::Receiver<TorrentStats>) {
    loop {
        let why = match stats
            .wait_for(|s| s.peers == 0 && s.unreachable.is_some())
            .await
        {
            Ok(s) => s.unreachable.clone().unwrap_or_default(),
            Err(_) => return,
        };
        eprintln!("songswarm: no peer connected; last try {why}; still trying");
        if stats.wait_for(|s| s.peers > 0).await.is_err() {
            return;
        }
    }
}
