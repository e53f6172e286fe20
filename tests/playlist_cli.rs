//! `songswarm id` and `songswarm playlist`, as a user runs them against a
//! ring of three real node processes on loopback: a playlist made through
//! one node is read through another by another user, long playlists are
//! chained, a stale compare-and-swap is reported as a conflict, and hostile
//! writes are refused with the replicas unchanged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

#[path = "support/cli_node.rs"]
mod cli_node;
use cli_node::{free_addr, start_node, wait_ring};
use std::time::Duration;

use songswarm::chord::client::ChordClient;
use songswarm::chord::records::{Mutable, RecordKind, SignedItem};
use songswarm::id::Id;
use songswarm::identity::Identity;
use songswarm::playlist::ring::{self, PlaylistError};
use songswarm::playlist::PlaylistRef;

const BIN: &str = env!("CARGO_BIN_EXE_songswarm");

fn songswarm(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SONGSWARM_CONFIG_DIR", config)
        .output()
        .expect("run songswarm")
}

fn ok_json(config: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = songswarm(config, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn failure(config: &Path, args: &[&str]) -> String {
    let out = songswarm(config, args);
    assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn track(n: u32) -> String {
    Id::hash(&n.to_be_bytes()).to_hex()
}

fn tracks_of(v: &serde_json::Value) -> Vec<String> {
    v["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .map(|t| t.as_str().expect("hex").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_through_a_ring_of_processes() {
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let _a = start_node(&addrs[0], None);
    let _b = start_node(&addrs[1], Some(&addrs[0]));
    let mut c = start_node(&addrs[2], Some(&addrs[0]));
    wait_ring(&addrs);
    let dirs = tempfile::tempdir().unwrap();
    let alice = dirs.path().join("alice");
    let bob = dirs.path().join("bob");

    // The identity: made once, mode 0600, shown the same each time.
    let id = ok_json(&alice, &["id"]);
    let key = id["public_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    assert_eq!(ok_json(&alice, &["id"])["public_key"], key.as_str());
    let mode = std::fs::metadata(alice.join("identity.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Alice makes a playlist through node a; Bob reads it through node c.
    let (t1, t2) = (track(1), track(2));
    let made = ok_json(
        &alice,
        &[
            "playlist",
            "create",
            "road trip",
            &t1,
            &t2,
            "--node",
            &addrs[0],
        ],
    );
    assert_eq!(made["version"], 1);
    let reference = format!("{key}/road trip");
    let seen = ok_json(&bob, &["playlist", "show", &reference, "--node", &addrs[2]]);
    assert_eq!(
        (seen["version"].as_u64(), tracks_of(&seen)),
        (Some(1), vec![t1.clone(), t2.clone()])
    );

    // A long playlist is chained over several records, in order.
    let more: Vec<String> = (10..50).map(track).collect();
    let mut add = vec!["playlist", "add", "road trip"];
    add.extend(more.iter().map(String::as_str));
    add.extend(["--node", addrs[1].as_str()]);
    let grown = ok_json(&alice, &add);
    assert_eq!(
        (grown["version"].as_u64(), grown["records"].as_u64()),
        (Some(2), Some(2))
    );
    let seen = ok_json(&bob, &["playlist", "show", &reference, "--node", &addrs[0]]);
    let mut want = vec![t1.clone(), t2.clone()];
    want.extend(more.iter().cloned());
    assert_eq!(tracks_of(&seen), want);
    assert_eq!(seen["records"], 2);

    // Creating it again, Bob editing it (his own namespace has none), bad input.
    let err = failure(
        &alice,
        &["playlist", "create", "road trip", "--node", &addrs[0]],
    );
    assert!(err.contains("exists already"), "{err}");
    let err = failure(
        &bob,
        &["playlist", "add", "road trip", &t1, "--node", &addrs[0]],
    );
    assert!(err.contains("nothing is stored as"), "{err}");
    let err = failure(
        &alice,
        &[
            "playlist",
            "add",
            "road trip",
            "nothex",
            "--node",
            &addrs[0],
        ],
    );
    assert!(err.contains("nothex"), "{err}");
    let err = failure(&alice, &["playlist", "show", "#x", "--node", &addrs[0]]);
    assert!(err.contains("starts with '#'"), "{err}");

    // Another device of Alice's writes on top of version 2 after this
    // one already did: compare-and-swap refuses it, and says why.
    let me = Identity::load_or_create(&alice).unwrap();
    let r = PlaylistRef::parse(&reference).unwrap().unwrap();
    let mut node = ChordClient::connect(addrs[2].parse().unwrap(), Duration::from_secs(30))
        .await
        .unwrap();
    let before = ring::read(&mut node, &r).await.unwrap().unwrap();
    assert_eq!(before.seq, 2);
    let removed = ok_json(
        &alice,
        &["playlist", "remove", "road trip", &t2, "--node", &addrs[1]],
    );
    assert_eq!(removed["version"], 3);
    assert!(!tracks_of(&removed).contains(&t2));
    let stale = ring::write(&mut node, me.signing_key(), "road trip", &[], before.seq).await;
    match stale {
        Err(
            e @ PlaylistError::Conflict {
                expected: 2,
                found: 3,
                ..
            },
        ) => {
            assert!(e.to_string().contains("changed elsewhere"), "{e}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // Hostile writes straight to the ring: each refused, nothing changed.
    let now = std::time::Instant::now();
    let key_id = r.key();
    let held = ring::read_item(&mut node, key_id).await.unwrap().unwrap();
    let mut forged = held.clone();
    forged.seq += 1;
    let lower = SignedItem::sign(me.signing_key(), b"road trip", 1, b"le".to_vec()).unwrap();
    let other_owner = SignedItem::sign(
        &ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
        b"road trip",
        9,
        b"le".to_vec(),
    )
    .unwrap();
    for (what, item) in [
        ("forged", forged),
        ("lower seq", lower),
        ("another owner", other_owner),
    ] {
        let put = node.put(key_id, Mutable::put(item).to_wire(now)).await;
        assert!(put.is_err(), "{what} was acknowledged");
        let after = ring::read_item(&mut node, key_id).await.unwrap().unwrap();
        assert_eq!(after, held, "{what} changed the playlist");
    }
    let mut oversize = held.clone();
    oversize.v = format!("1001:{}", "x".repeat(1001)).into_bytes();
    let err = node
        .put(key_id, Mutable::put(oversize).to_wire(now))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not parse or validate"),
        "{err}"
    );
    assert_eq!(
        ring::read_item(&mut node, key_id).await.unwrap().unwrap(),
        held
    );

    // The list of Alice's own playlists, as the ring holds them.
    let list = ok_json(&alice, &["playlist", "list", "--node", &addrs[2]]);
    assert_eq!(list["playlists"][0]["name"], "road trip");
    assert_eq!(list["playlists"][0]["version"], 3);
    assert_eq!(list["playlists"][0]["tracks"], 41);
    let text = songswarm(&bob, &["playlist", "list", "--node", &addrs[2]]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("no playlists made here yet"));

    // A signed value under Alice's key: versions, Bob reads it, a name of
    // a playlist is not taken, and it survives the loss of a replica.
    let put = ok_json(
        &alice,
        &[
            "dht",
            "put",
            "--mutable",
            "status",
            "hello",
            "--node",
            &addrs[0],
        ],
    );
    assert_eq!(put["seq"], 1);
    let put = ok_json(
        &alice,
        &[
            "dht",
            "put",
            "--mutable",
            "status",
            "on the road",
            "--node",
            &addrs[1],
        ],
    );
    assert_eq!(put["seq"], 2);
    let name = format!("{key}/status");
    let got = ok_json(&bob, &["dht", "get", &name, "--node", &addrs[2]]);
    assert_eq!(
        (got["seq"].as_u64(), got["value"].as_str()),
        (Some(2), Some("on the road"))
    );
    let err = failure(
        &alice,
        &[
            "dht",
            "put",
            "--mutable",
            "road trip",
            "x",
            "--node",
            &addrs[0],
        ],
    );
    assert!(err.contains("one of your playlists"), "{err}");
    let err = failure(
        &bob,
        &["dht", "get", &format!("{key}/nothing"), "--node", &addrs[0]],
    );
    assert!(err.contains("nothing is stored"), "{err}");
    let err = failure(&bob, &["dht", "get", "status", "--node", &addrs[0]]);
    assert!(err.contains("expected 40 hexadecimal digits"), "{err}");
    let _ = c.0.kill();
    let _ = c.0.wait();
    let got = ok_json(&bob, &["dht", "get", &name, "--node", &addrs[0]]);
    assert_eq!(got["value"], "on the road");
    let seen = ok_json(&bob, &["playlist", "show", &reference, "--node", &addrs[1]]);
    assert_eq!(seen["version"], 3);
}
