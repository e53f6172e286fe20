use super::*;

fn peer(port: u16) -> Peer {
    Peer::new(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn ping(req: ReqId) -> Message {
    Message::Ping { req }
}

#[test]
fn answers_count_only_from_the_node_asked() {
    let now = Instant::now();
    let mut rpcs = Rpcs::new(Duration::from_millis(800));
    rpcs.request(now, peer(1), ping, RingRpc::Stabilize);
    assert_eq!(
        rpcs.poll_output(),
        Some(Output::Send {
            to: peer(1).addr,
            msg: Message::Ping { req: 1 }
        })
    );
    assert!(rpcs.take_answer(now, 1, peer(2).addr).is_none());
    assert!(rpcs.take_answer(now, 2, peer(1).addr).is_none());
    let rpc = rpcs.take_answer(now, 1, peer(1).addr).expect("answered");
    assert!(matches!(rpc.kind, Pending::Ring(RingRpc::Stabilize)));
    assert!(rpcs.take_answer(now, 1, peer(1).addr).is_none(), "once");
    assert_eq!(rpcs.next_deadline(), None);
}

#[test]
fn expired_requests_come_back_in_deadline_order() {
    let t0 = Instant::now();
    let timeout = Duration::from_millis(800);
    let mut rpcs = Rpcs::new(timeout);
    rpcs.request(t0, peer(1), ping, RingRpc::Stabilize);
    let t1 = t0 + Duration::from_millis(100);
    rpcs.request(t1, peer(2), ping, RingRpc::StabilizeCheck);
    assert_eq!(rpcs.next_deadline(), Some(t0 + timeout));
    assert!(rpcs.take_expired(t0 + timeout / 2).is_none());
    let late = t1 + timeout;
    assert_eq!(rpcs.take_expired(late).map(|r| r.to), Some(peer(1)));
    assert_eq!(rpcs.take_expired(late).map(|r| r.to), Some(peer(2)));
    assert!(rpcs.take_expired(late).is_none());
}

#[test]
fn slow_answers_push_later_deadlines_out() {
    let t0 = Instant::now();
    let timeout = Duration::from_millis(800);
    let mut rpcs = Rpcs::new(timeout);
    rpcs.request(t0, peer(1), ping, RingRpc::Stabilize);
    let slow = t0 + Duration::from_millis(700);
    assert!(rpcs.take_answer(slow, 1, peer(1).addr).is_some());
    rpcs.request(slow, peer(1), ping, RingRpc::Stabilize);
    assert!(rpcs.next_deadline().expect("in flight") > slow + timeout);
    assert_eq!(rpcs.sent_to(peer(1).addr), vec![2]);
    assert!(rpcs.any(|to, kind| to == peer(1) && matches!(kind, Pending::Ring(RingRpc::Stabilize))));
}

#[test]
fn a_retry_keeps_the_id_and_doubles_the_patience() {
    let t0 = Instant::now();
    let timeout = Duration::from_millis(800);
    let mut rpcs = Rpcs::new(timeout);
    rpcs.request(t0, peer(1), ping, RingRpc::Stabilize);
    let _ = rpcs.poll_output();
    let rpc = rpcs.take_expired(t0 + timeout).expect("expired");
    let Failure::TimedOut(sends) = rpc.timed_out() else {
        panic!("a time-out");
    };
    assert_eq!((sends.req, sends.tries), (1, 1));
    let t1 = t0 + timeout;
    rpcs.retry(t1, peer(1), sends, ping, RingRpc::Stabilize);
    assert_eq!(
        rpcs.poll_output(),
        Some(Output::Send {
            to: peer(1).addr,
            msg: Message::Ping { req: 1 }
        })
    );
    assert_eq!(rpcs.next_deadline(), Some(t1 + 2 * timeout));
    let rpc = rpcs.take_answer(t1, 1, peer(1).addr).expect("either send");
    assert_eq!(
        rpc.timed_out(),
        Failure::TimedOut(Sends { tries: 2, ..sends })
    );
}
