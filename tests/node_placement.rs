//! `songswarm node --placement K`: real nodes on loopback each take, of K
//! ports from their --listen port on, the free one whose id owns the
//! longest arc of the ring as it stood when they joined. The arcs are
//! computed here from the ring's members, not by the code under test.

#[path = "support/procs.rs"]
mod procs;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use procs::Proc;
use songswarm::chord::client::{walk, ChordClient};
use songswarm::id::Id;

const BIN: &str = env!("CARGO_BIN_EXE_songswarm");
const CHOICES: u16 = 4;

/// `(to - from) mod 2^160`: the clockwise arc from `from` to `to`.
fn arc(from: Id, to: Id) -> [u8; 20] {
    let (a, b) = (from.0, to.0);
    let mut out = [0u8; 20];
    let mut borrow = 0i16;
    for i in (0..20).rev() {
        let mut d = b[i] as i16 - a[i] as i16 - borrow;
        borrow = (d < 0) as i16;
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

/// The arc `addr` would own among `members`: from the closest member
/// counter-clockwise of it (the smallest clockwise arc from any member).
fn owned(addr: SocketAddr, members: &[SocketAddr]) -> [u8; 20] {
    let id = Id::of_addr(addr);
    members
        .iter()
        .map(|m| arc(Id::of_addr(*m), id))
        .min()
        .expect("a member")
}

/// `CHOICES` consecutive free loopback ports, held until dropped.
fn free_run() -> Vec<TcpListener> {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = first.local_addr().expect("addr").port();
        if base > u16::MAX - CHOICES {
            continue;
        }
        let mut run = vec![first];
        for p in base + 1..base + CHOICES {
            match TcpListener::bind(("127.0.0.1", p)) {
                Ok(l) => run.push(l),
                Err(_) => break,
            }
        }
        if run.len() == CHOICES as usize {
            return run;
        }
    }
}

/// Waits until the ring from `start` is exactly `members`, in id order,
/// with every predecessor pointer right.
fn wait_settled(rt: &tokio::runtime::Runtime, start: SocketAddr, members: &[SocketAddr]) {
    let t = Duration::from_secs(2);
    let mut want: Vec<SocketAddr> = members.to_vec();
    want.sort_by_key(|a| Id::of_addr(*a));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let settled = rt.block_on(async {
            let Ok(walked) = walk(start, t, 64).await else {
                return false;
            };
            let mut sorted = walked.clone();
            sorted.sort_by_key(|a| Id::of_addr(*a));
            if sorted != want {
                return false;
            }
            if sorted.len() == 1 {
                return true;
            }
            for (i, m) in sorted.iter().enumerate() {
                let pred = sorted[(i + sorted.len() - 1) % sorted.len()];
                let Ok(mut c) = ChordClient::connect(*m, t).await else {
                    return false;
                };
                let Ok(info) = c.ring().await else {
                    return false;
                };
                if info.predecessor != Some(pred) {
                    return false;
                }
            }
            true
        });
        if settled {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the ring never settled on {members:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node(listen: SocketAddr, extra: &[String]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "--json", "--listen", &listen.to_string()])
        .args(extra);
    Proc::spawn("songswarm node", cmd)
}

#[test]
fn each_joiner_takes_the_free_port_whose_id_owns_the_longest_arc() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let first: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut procs = vec![node(first, &[])];
    let got: SocketAddr = procs[0]
        .expect_listening(Duration::from_secs(20))
        .parse()
        .unwrap();
    assert_eq!(got, first, "without --placement, the --listen port");
    let mut members = vec![first];
    let mut best_taken = 0;
    for join in 0..4 {
        wait_settled(&rt, first, &members);
        let mut run = free_run();
        let candidates: Vec<SocketAddr> = run.iter().map(|l| l.local_addr().unwrap()).collect();
        let arcs: Vec<[u8; 20]> = candidates.iter().map(|c| owned(*c, &members)).collect();
        let best = (0..candidates.len()).max_by_key(|&i| arcs[i]).unwrap();
        // Every other joiner finds its best port taken: the best free one.
        let taken = join % 2 == 1;
        let held = taken.then(|| run.remove(best));
        drop(run);
        let want = (0..candidates.len())
            .filter(|&i| !(taken && i == best))
            .max_by_key(|&i| arcs[i])
            .unwrap();
        let extra = [
            "--placement".to_string(),
            CHOICES.to_string(),
            "--bootstrap".to_string(),
            first.to_string(),
        ];
        let mut p = node(candidates[0], &extra);
        let got: SocketAddr = p.expect_listening(Duration::from_secs(30)).parse().unwrap();
        assert_eq!(
            got, candidates[want],
            "join {join}: candidates {candidates:?} with arcs {arcs:?} among {members:?} (best taken: {taken})"
        );
        eprintln!(
            "join {join}: took port {} (candidate {want} of {CHOICES}; best taken: {taken})",
            got.port()
        );
        best_taken += taken as usize;
        drop(held);
        members.push(got);
        procs.push(p);
    }
    assert_eq!(best_taken, 2);
    wait_settled(&rt, first, &members);
}
