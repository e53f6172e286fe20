use super::*;

fn config() -> ChordConfig {
    ChordConfig {
        probes_per_ip: 2,
        probe_window: Duration::from_secs(60),
        max_outstanding_probes: 3,
        max_probe_verdicts: 4,
        probe_timeout: Duration::from_secs(5),
        announce_ttl: Duration::from_secs(600),
        ..ChordConfig::default()
    }
}

fn at(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], port))
}

#[test]
fn one_probe_per_subject_until_its_verdict_has_run_out() {
    let mut p = Probes::new(&config());
    let t = Instant::now();
    let key = Id::hash(b"song");
    assert!(p.want(t, at(1, 1), key));
    assert!(!p.want(t, at(1, 1), key), "in flight");
    assert!(
        !p.verdict(t, at(1, 1), key, Verdict::Silent),
        "silence keeps"
    );
    assert!(
        !p.want(t + Duration::from_secs(120), at(1, 1), key),
        "cached"
    );
    // The verdict stands for the announce TTL, then the peer may be asked again.
    assert!(p.want(t + Duration::from_secs(601), at(1, 1), key));
}

#[test]
fn only_gone_drops_the_entry() {
    let mut p = Probes::new(&config());
    let t = Instant::now();
    let key = Id::hash(b"song");
    for (host, v) in [
        (1, Verdict::Serving),
        (2, Verdict::Silent),
        (3, Verdict::Gone),
    ] {
        assert!(p.want(t, at(host, 1), key));
        assert_eq!(
            p.verdict(t, at(host, 1), key, v),
            v == Verdict::Gone,
            "{v:?}"
        );
    }
}

#[test]
fn verdicts_on_probes_not_asked_or_given_up_are_ignored() {
    let mut p = Probes::new(&config());
    let t = Instant::now();
    let key = Id::hash(b"song");
    assert!(!p.verdict(t, at(1, 1), key, Verdict::Gone), "never asked");
    assert!(p.want(t, at(1, 1), key), "and no verdict is remembered");
    assert!(p.want(t, at(1, 2), key));
    // Patience is twice the probe time-out.
    let late = t + Duration::from_secs(11);
    assert!(!p.verdict(late, at(1, 2), key, Verdict::Gone), "given up");
    assert_eq!(p.outstanding(), 0);
}

#[test]
fn probes_per_target_ip_are_limited_per_window() {
    let mut p = Probes::new(&config());
    let t = Instant::now();
    let key = |i: u8| Id::hash(&[i]);
    assert!(p.want(t, at(1, 1), key(1)));
    assert!(p.want(t, at(1, 2), key(2)));
    assert!(
        !p.want(t, at(1, 3), key(3)),
        "third probe of 10.0.0.1 in a window"
    );
    assert!(
        p.want(t, at(2, 1), key(3)),
        "another address has its own share"
    );
    for (port, k) in [(1, 1), (2, 2)] {
        p.verdict(t, at(1, port), key(k), Verdict::Silent);
    }
    assert!(!p.want(t + Duration::from_secs(59), at(1, 3), key(3)));
    assert!(
        p.want(t + Duration::from_secs(60), at(1, 3), key(3)),
        "next window"
    );
}

#[test]
fn probes_in_flight_and_verdicts_are_bounded() {
    let mut p = Probes::new(&config());
    let t = Instant::now();
    let key = |i: u8| Id::hash(&[i]);
    for host in 1..=3 {
        assert!(p.want(t, at(host, 1), key(host)));
    }
    assert!(!p.want(t, at(4, 1), key(4)), "three in flight");
    assert_eq!(p.outstanding(), 3);
    for host in 1..=3 {
        p.verdict(t, at(host, 1), key(host), Verdict::Gone);
    }
    // Verdicts past the bound push out the ones that run out first
    // (a window later, so the targets' windows have run out too).
    for host in 4..=5 {
        let later = t + Duration::from_secs(60 + host as u64);
        assert!(p.want(later, at(host, 1), key(host)));
        p.verdict(later, at(host, 1), key(host), Verdict::Gone);
    }
    assert_eq!(p.verdicts.len(), 4);
    assert!(
        !p.verdicts.contains_key(&(at(1, 1), key(1))),
        "the oldest verdict went"
    );
    assert!(p.verdicts.contains_key(&(at(5, 1), key(5))));
}
