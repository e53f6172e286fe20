#!/usr/bin/python3
"""A real BitTorrent peer (Debian's python3-libtorrent) for songswarm's
interoperability tests and benchmarks.

Modes (one JSON object per stdout line, flushed; errors go to stderr, exit 1):

  create PATH --out T.torrent [--piece-length N]
      Writes a plain BitTorrent v1 metainfo for a file or a directory.
      Prints {"event":"created","info_hash":HEX}.

  seed T.torrent --data DIR [--listen 127.0.0.1:PORT] [...]
      Checks the data at DIR (the directory holding the torrent's name), and
      once every piece is verified prints
      {"event":"listening","addr":"127.0.0.1:PORT","port":PORT}. Seeds until
      stdin closes or the process is killed; on stdin EOF prints
      {"event":"stats",...} and exits 0.

  leech T.torrent --out DIR --peer ADDR [--peer ADDR ...] [...]
      Prints the same "listening" line once its listener is up, connects to
      every --peer (again every second while it has no connection), waits
      until every piece is downloaded and hash-checked and the disk cache is
      flushed, then prints {"event":"done",...} and exits 0 (or, with
      --linger, keeps seeding until stdin closes, then prints "stats").
      Gives up after --timeout seconds: a message on stderr and exit 2.
      Prints {"event":"connected",...} when the first connection starts.
      With --progress, prints {"event":"progress","pieces":N,...} whenever
      more pieces are verified (so a test can act mid-transfer).

  seed|leech ... --no-redundant-have sends no HAVE to a peer that already
      has the piece (libtorrent's send_redundant_have = false).

  seed ... --notify-upload BYTES prints {"event":"uploaded",...} once that
      much payload has been sent; --partial serves whatever verified pieces
      the data holds instead of requiring all of them; --super-seed turns on
      libtorrent's super-seeding once every piece is verified (with
      --strict-super-seed, its strict kind: a peer gets a new piece only
      after another peer has announced the last one), and the listening line
      says "super_seeding": true when libtorrent reports it on.

Only plain-text TCP on 127.0.0.1: no DHT, LSD, UPnP, NAT-PMP, trackers, uTP or
protocol encryption, so every byte on the wire is BitTorrent as BEP 3 says.
"""

import argparse
import json
import os
import sys
import threading
import time

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write(
        "lt_peer.py: python3 cannot import libtorrent; run scripts/install-test-deps\n"
    )
    sys.exit(3)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def fail(msg, code=1):
    sys.stderr.write("lt_peer.py: " + msg + "\n")
    sys.stderr.flush()
    # os._exit: the session's threads must not keep a failed helper alive.
    os._exit(code)


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def make_session(args):
    """A session that only speaks plain-text TCP on loopback."""
    settings = lt.high_performance_seed() if args.high_performance else {}
    settings.update(
        {
            "listen_interfaces": args.listen,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_incoming_utp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_tcp": True,
            "enable_outgoing_tcp": True,
            # Plain text: songswarm does not speak MSE/PE.
            "in_enc_policy": int(lt.enc_policy.disabled),
            "out_enc_policy": int(lt.enc_policy.disabled),
            # Every peer in the tests lives on 127.0.0.1.
            "allow_multiple_connections_per_ip": True,
            # Peers in a test start together; one dialled before it listens
            # must be retried within a second, not after libtorrent's 60 s.
            "min_reconnect_time": 1,
            "max_failcount": 100,
            "alert_mask": int(
                lt.alert.category_t.status_notification
                | lt.alert.category_t.error_notification
                | lt.alert.category_t.storage_notification
                | lt.alert.category_t.connect_notification
            ),
            # Rate caps count BitTorrent bytes, as songswarm's do, not
            # TCP/IP headers as well.
            "rate_limit_ip_overhead": False,
            "upload_rate_limit": args.upload_rate,
            "download_rate_limit": args.download_rate,
            "user_agent": "lt_peer.py/libtorrent " + lt.__version__,
        }
    )
    if getattr(args, "strict_super_seed", False):
        settings["strict_super_seeding"] = True
    if args.no_redundant_have:
        # No HAVE to a peer that has the piece already: a seed (even a
        # super-seed, which announced the piece itself) never hears of the
        # pieces this peer completes. BEP 3 allows it; other clients do it.
        settings["send_redundant_have"] = False
    if args.high_performance:
        # Loopback transfers are bounded by CPU, not by the network: let every
        # peer have plenty of requests and send buffer in flight.
        settings.update({"max_out_request_queue": 1500, "max_allowed_in_request_queue": 2000})
    if args.peer_log:
        # Every message on the wire, for debugging an interop failure.
        settings["alert_mask"] |= int(lt.alert.category_t.peer_log_notification)
    ses = lt.session(settings)
    ses.peer_log = open(args.peer_log, "a") if args.peer_log else None
    # By default libtorrent puts local-network peers (127/8 included) into a
    # peer class without rate limits; the swarm benchmark needs the limits to
    # hold on loopback, so every address goes to the global class.
    if args.upload_rate or args.download_rate:
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    return ses


def wait_listening(ses, deadline):
    """Waits for the listen socket and returns its port."""
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_failed_alert):
                fail("cannot listen: " + a.message())
        port = ses.listen_port()
        if port:
            return port
        ses.wait_for_alert(100)
    fail("timed out waiting for the listen socket", 2)


def check_alerts(ses):
    """Fails on errors; returns the alerts for the caller to look at."""
    alerts = ses.pop_alerts()
    for a in alerts:
        if ses.peer_log is not None and isinstance(a, lt.peer_log_alert):
            ses.peer_log.write("%.3f %s\n" % (time.monotonic(), a.message()))
            ses.peer_log.flush()
        if isinstance(a, (lt.file_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
            fail(a.message())
        if isinstance(a, lt.hash_failed_alert):
            sys.stderr.write("lt_peer.py: " + a.message() + "\n")
    return alerts


def stdin_closed_event():
    """An event set when stdin reaches EOF (the parent's way to say stop)."""
    ev = threading.Event()

    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            ev.set()

    threading.Thread(target=watch, daemon=True).start()
    return ev


def stats(handle):
    st = handle.status()
    return {
        "event": "stats",
        "total_payload_upload": st.total_payload_upload,
        "total_payload_download": st.total_payload_download,
        "total_upload": st.total_upload,
        "total_download": st.total_download,
        "num_peers": st.num_peers,
    }


def flush(ses, handle, deadline):
    """Waits until libtorrent has written every downloaded block to disk."""
    handle.save_resume_data(lt.save_resume_flags_t.flush_disk_cache)
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.save_resume_data_alert):
                return
            if isinstance(a, lt.save_resume_data_failed_alert):
                fail("flushing to disk failed: " + a.message())
        ses.wait_for_alert(100)
    fail("timed out flushing to disk", 2)


def cmd_create(args):
    fs = lt.file_storage()
    lt.add_files(fs, os.path.abspath(args.path))
    if fs.num_files() == 0:
        fail("nothing to share at " + args.path)
    ct = lt.create_torrent(fs, args.piece_length, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(args.path)))
    ct.set_creator("lt_peer.py")
    data = lt.bencode(ct.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    ti = lt.torrent_info(args.out)
    emit({"event": "created", "info_hash": str(ti.info_hash())})


def cmd_seed(args):
    deadline = time.monotonic() + args.timeout
    ses = make_session(args)
    ti = lt.torrent_info(args.torrent)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = args.data
    atp.flags = lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    handle = ses.add_torrent(atp)
    # Ready means: listening, and every piece verified against the data
    # (with --partial: the data checked, whatever it holds).
    while True:
        check_alerts(ses)
        st = handle.status()
        if st.is_seeding and st.num_pieces == ti.num_pieces():
            break
        if args.partial and st.state == lt.torrent_status.downloading:
            break
        if st.state == lt.torrent_status.downloading:
            fail("the data at %s does not match the torrent (%d of %d pieces)"
                 % (args.data, st.num_pieces, ti.num_pieces()))
        if time.monotonic() > deadline:
            fail("timed out checking the data", 2)
        ses.wait_for_alert(100)
    if args.super_seed or args.strict_super_seed:
        # Set once seeding: libtorrent super-seeds only as a seed.
        handle.set_flags(lt.torrent_flags.super_seeding)
    super_seeding = bool(handle.flags() & lt.torrent_flags.super_seeding)
    port = wait_listening(ses, deadline)
    emit({"event": "listening", "addr": "127.0.0.1:%d" % port, "port": port,
          "info_hash": str(ti.info_hash()), "pieces": handle.status().num_pieces,
          "super_seeding": super_seeding})
    stop = stdin_closed_event()
    notify = args.notify_upload
    while not stop.wait(0.05 if notify else 0.2):
        check_alerts(ses)
        if notify and handle.status().total_payload_upload >= notify:
            emit(dict(stats(handle), event="uploaded"))
            notify = 0
    check_alerts(ses)  # the last peer-log lines, when asked for
    emit(stats(handle))
    os._exit(0)


def cmd_leech(args):
    start = time.monotonic()
    deadline = start + args.timeout
    ses = make_session(args)
    ti = lt.torrent_info(args.torrent)
    os.makedirs(args.out, exist_ok=True)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = args.out
    atp.flags = lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    handle = ses.add_torrent(atp)
    port = wait_listening(ses, deadline)
    emit({"event": "listening", "addr": "127.0.0.1:%d" % port, "port": port,
          "info_hash": str(ti.info_hash())})
    peers = [parse_addr(p) for p in args.peer]
    last_connect = 0.0
    reported = -1
    connected = False
    while True:
        alerts = check_alerts(ses)
        if not connected and any(isinstance(a, lt.peer_connect_alert) for a in alerts):
            # libtorrent dials a peer given to connect_peer on its next tick
            # (about 0.5 s later); benchmarks time the transfer from here.
            connected = True
            emit({"event": "connected", "seconds": time.monotonic() - start})
        st = handle.status()
        if args.progress and st.num_pieces > reported:
            reported = st.num_pieces
            emit({"event": "progress", "pieces": st.num_pieces, "num_pieces": ti.num_pieces()})
        if st.is_seeding and st.num_pieces == ti.num_pieces():
            break
        now = time.monotonic()
        if now > deadline:
            fail("timed out after %.0f s with %d of %d pieces (%d peers)"
                 % (args.timeout, st.num_pieces, ti.num_pieces(), st.num_peers), 2)
        # Connect once checking is over, and again every second while fewer
        # peers are connected than we were given (one that was not
        # listening yet, or that dropped us).
        checking = st.state in (lt.torrent_status.checking_files,
                                lt.torrent_status.checking_resume_data)
        if not checking and (last_connect == 0.0 or (st.num_peers < len(peers) and now - last_connect > 1.0)):
            for p in peers:
                handle.connect_peer(p)
            last_connect = now
        ses.wait_for_alert(50)
    finished = time.monotonic()
    flush(ses, handle, deadline)
    st = handle.status()
    seconds = finished - start
    done = {
        "event": "done",
        "info_hash": str(ti.info_hash()),
        "bytes": ti.total_size(),
        "seconds": seconds,
        "rate_bytes_per_sec": ti.total_size() / seconds if seconds > 0 else 0.0,
        "pieces": st.num_pieces,
        "total_payload_download": st.total_payload_download,
        "total_payload_upload": st.total_payload_upload,
        "uploaded_bytes": st.total_payload_upload,
        "peers": st.num_peers,
    }
    emit(done)
    if args.linger:
        stop = stdin_closed_event()
        while not stop.wait(0.2):
            check_alerts(ses)
        emit(stats(handle))
    os._exit(0)


def main():
    p = argparse.ArgumentParser(description="libtorrent peer for songswarm's interop tests")
    sub = p.add_subparsers(dest="mode", required=True)

    c = sub.add_parser("create")
    c.add_argument("path")
    c.add_argument("--out", required=True)
    c.add_argument("--piece-length", type=int, default=65536)

    for name in ("seed", "leech"):
        s = sub.add_parser(name)
        s.add_argument("torrent")
        s.add_argument("--listen", default="127.0.0.1:0")
        s.add_argument("--upload-rate", type=int, default=0, help="bytes/s, 0 = unlimited")
        s.add_argument("--download-rate", type=int, default=0, help="bytes/s, 0 = unlimited")
        s.add_argument("--high-performance", action="store_true",
                       help="start from libtorrent's high_performance_seed settings")
        s.add_argument("--timeout", type=float, default=60.0)
        s.add_argument("--peer-log", metavar="FILE",
                       help="append libtorrent's per-peer wire log to FILE (debugging)")
        s.add_argument("--no-redundant-have", action="store_true",
                       help="send no HAVE to a peer that has the piece (send_redundant_have = false)")
        if name == "seed":
            s.add_argument("--data", required=True)
            s.add_argument("--partial", action="store_true",
                           help="serve whatever verified pieces the data holds")
            s.add_argument("--notify-upload", type=int, default=0, metavar="BYTES",
                           help='print an "uploaded" line once this much payload is sent')
            s.add_argument("--super-seed", action="store_true",
                           help="announce pieces one peer at a time (libtorrent's super_seeding)")
            s.add_argument("--strict-super-seed", action="store_true",
                           help="super-seed with libtorrent's strict_super_seeding setting")
        else:
            s.add_argument("--out", required=True)
            s.add_argument("--peer", action="append", default=[])
            s.add_argument("--linger", action="store_true",
                           help="after done, keep seeding until stdin closes")
            s.add_argument("--progress", action="store_true",
                           help='print a "progress" line whenever a piece is verified')

    args = p.parse_args()
    if args.mode == "create":
        cmd_create(args)
    elif args.mode == "seed":
        cmd_seed(args)
    else:
        cmd_leech(args)


if __name__ == "__main__":
    main()
