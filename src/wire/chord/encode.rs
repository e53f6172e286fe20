//! Frames to bencoded bodies. Every dictionary is built in a `BTreeMap`, so
//! keys come out sorted as bencode requires and a frame always encodes to
//! the same bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use bendy::encoding::ToBencode;
use bendy::value::Value;

use super::message::{Kind, Message, Role, Song, WireEntry, WireRecord, SWARM_LIST};
use super::{ChordCodecError, ClientReply, ClientRequest, Frame, FEATURES};
use crate::id::Id;

type Dict = BTreeMap<Cow<'static, [u8]>, Value<'static>>;

fn key(k: &'static str) -> Cow<'static, [u8]> {
    Cow::Borrowed(k.as_bytes())
}

fn bytes(b: impl Into<Vec<u8>>) -> Value<'static> {
    Value::Bytes(Cow::Owned(b.into()))
}

fn int(i: u64) -> Value<'static> {
    Value::Integer(i.min(i64::MAX as u64) as i64)
}

fn addr_v(a: SocketAddr) -> Value<'static> {
    bytes(a.to_string())
}

fn addrs_v(list: &[SocketAddr]) -> Value<'static> {
    Value::List(list.iter().map(|a| addr_v(*a)).collect())
}

fn id_v(id: Id) -> Value<'static> {
    bytes(id.0.to_vec())
}

fn role_v(r: Role) -> Value<'static> {
    int(matches!(r, Role::Seeder) as u64)
}

fn entries_v(entries: &[WireEntry]) -> Value<'static> {
    Value::List(
        entries
            .iter()
            .map(|e| {
                Value::List(vec![
                    addr_v(e.peer),
                    int(e.ttl_ms),
                    role_v(e.role),
                    int(e.removed as u64),
                ])
            })
            .collect(),
    )
}

/// A song as a list: `[info-hash, file, title, artist, album, duration]`.
fn song_items(s: &Song) -> Vec<Value<'static>> {
    vec![
        id_v(s.info_hash),
        int(s.file as u64),
        bytes(s.title.as_bytes()),
        bytes(s.artist.as_bytes()),
        bytes(s.album.as_bytes()),
        int(s.duration_ms),
    ]
}

fn kind_v(kind: Kind) -> Value<'static> {
    int(kind as u64)
}

/// The fields that carry a record: a swarm list's entries under `e` (as
/// before record kinds), any other kind's tag under `y` and body under `v`.
fn record_fields(value: &WireRecord) -> Vec<(&'static str, Value<'static>)> {
    match value {
        WireRecord::Swarm(entries) => vec![("e", entries_v(entries))],
        WireRecord::Tagged { kind, body } => vec![("v", bytes(body.clone())), ("y", kind_v(*kind))],
    }
}

/// One key of a hand-off page: `[key, entries]` for a swarm list (as before
/// record kinds), `[key, kind, body]` for any other kind.
fn keyed_record_v(key: Id, value: &WireRecord) -> Value<'static> {
    match value {
        WireRecord::Swarm(entries) => Value::List(vec![id_v(key), entries_v(entries)]),
        WireRecord::Tagged { kind, body } => {
            Value::List(vec![id_v(key), kind_v(*kind), bytes(body.clone())])
        }
    }
}

fn msg(t: &'static str, fields: Vec<(&'static str, Value<'static>)>) -> Dict {
    let mut d = Dict::new();
    d.insert(key("t"), bytes(t));
    for (k, v) in fields {
        d.insert(key(k), v);
    }
    d
}

pub(super) fn encode_frame(frame: &Frame) -> Result<Vec<u8>, ChordCodecError> {
    let d = match frame {
        Frame::Hello { id, addr } => {
            let mut f = vec![("id", id_v(*id))];
            if let Some(a) = addr {
                f.push(("addr", addr_v(*a)));
            }
            f.push(("f", int(FEATURES)));
            msg("hello", f)
        }
        Frame::Node(m) => {
            let mut d = encode_message(m);
            d.insert(key("f"), int(FEATURES));
            d
        }
        Frame::Request { req, body } => {
            let q = ("q", int(*req));
            match body {
                ClientRequest::Announce { key: k, peer, role } => msg(
                    "c_announce",
                    vec![
                        q,
                        ("k", id_v(*k)),
                        ("p", addr_v(*peer)),
                        ("r", role_v(*role)),
                    ],
                ),
                ClientRequest::Remove { key: k, peer } => {
                    msg("c_remove", vec![q, ("k", id_v(*k)), ("p", addr_v(*peer))])
                }
                ClientRequest::Peers { key: k } => msg("c_peers", vec![q, ("k", id_v(*k))]),
                ClientRequest::Lookup { key: k } => msg("c_lookup", vec![q, ("k", id_v(*k))]),
                ClientRequest::Ring => msg("c_ring", vec![q]),
                ClientRequest::Search { query, limit } => msg(
                    "c_search",
                    vec![q, ("s", bytes(query.as_bytes())), ("n", int(*limit as u64))],
                ),
                ClientRequest::Library { after, limit } => {
                    let mut f = vec![q, ("n", int(*limit as u64))];
                    if let Some(a) = after {
                        f.push(("a", id_v(*a)));
                    }
                    msg("c_library", f)
                }
                ClientRequest::PutValue { value } => {
                    msg("c_putv", vec![q, ("v", bytes(value.clone()))])
                }
                ClientRequest::GetValue { key: k } => msg("c_getv", vec![q, ("k", id_v(*k))]),
                ClientRequest::Put { key: k, value } => {
                    let mut f = vec![q, ("k", id_v(*k))];
                    f.extend(record_fields(value));
                    msg("c_put", f)
                }
                ClientRequest::Get { key: k, kind } => {
                    msg("c_get", vec![q, ("k", id_v(*k)), ("y", kind_v(*kind))])
                }
            }
        }
        Frame::Reply { req, body } => {
            let q = ("q", int(*req));
            match body {
                ClientReply::Ok => msg("r_ok", vec![q]),
                ClientReply::Error(e) => msg("r_err", vec![q, ("e", bytes(e.as_bytes()))]),
                ClientReply::Record(value) => {
                    let mut f = vec![q];
                    f.extend(record_fields(value));
                    msg("r_record", f)
                }
                ClientReply::Peers(peers) => {
                    let list = peers
                        .iter()
                        .map(|(a, r)| Value::List(vec![addr_v(*a), role_v(*r)]))
                        .collect();
                    msg("r_peers", vec![q, ("l", Value::List(list))])
                }
                ClientReply::Lookup(info) => msg(
                    "r_lookup",
                    vec![
                        q,
                        ("k", id_v(info.key)),
                        ("o", addr_v(info.owner)),
                        ("s", addrs_v(&info.replicas)),
                        ("h", int(info.hops as u64)),
                    ],
                ),
                ClientReply::Ring(info) => {
                    let mut f = vec![
                        q,
                        ("id", id_v(info.id)),
                        ("addr", addr_v(info.addr)),
                        ("s", addrs_v(&info.successors)),
                        ("f", int(info.fingers as u64)),
                        ("n", int(info.keys as u64)),
                        ("j", int(info.joined as u64)),
                    ];
                    if let Some(p) = info.predecessor {
                        f.push(("p", addr_v(p)));
                    }
                    msg("r_ring", f)
                }
                ClientReply::Hits(hits) => {
                    let list = hits
                        .iter()
                        .map(|h| {
                            let mut items = song_items(&h.song);
                            items.extend([int(h.seeders as u64), int(h.peers as u64)]);
                            Value::List(items)
                        })
                        .collect();
                    msg("r_hits", vec![q, ("l", Value::List(list))])
                }
                ClientReply::Songs { songs, next } => {
                    let list = songs.iter().map(|s| Value::List(song_items(s))).collect();
                    let mut f = vec![q, ("l", Value::List(list))];
                    if let Some(n) = next {
                        f.push(("a", id_v(*n)));
                    }
                    msg("r_songs", f)
                }
                ClientReply::Value(value) => {
                    let mut f = vec![q];
                    if let Some(v) = value {
                        f.push(("v", bytes(v.clone())));
                    }
                    msg("r_value", f)
                }
            }
        }
    };
    Value::Dict(d)
        .to_bencode()
        .map_err(|e| ChordCodecError::Malformed(format!("cannot encode: {e}")))
}

fn encode_message(m: &Message) -> Dict {
    match m {
        Message::Ping { req } => msg("ping", vec![("q", int(*req))]),
        Message::Pong { req } => msg("pong", vec![("q", int(*req))]),
        Message::GetState { req } => msg("get_state", vec![("q", int(*req))]),
        Message::State { req, pred, succs } => {
            let mut f = vec![("q", int(*req)), ("s", addrs_v(succs))];
            if let Some(p) = pred {
                f.push(("p", addr_v(*p)));
            }
            msg("state", f)
        }
        Message::Notify => msg("notify", vec![]),
        Message::FindSuccessor { req, key: k } => {
            msg("find", vec![("q", int(*req)), ("k", id_v(*k))])
        }
        Message::Found { req, succs } => {
            msg("found", vec![("q", int(*req)), ("s", addrs_v(succs))])
        }
        Message::Closer { req, nodes } => {
            msg("closer", vec![("q", int(*req)), ("s", addrs_v(nodes))])
        }
        Message::Store { req, key: k, value } => {
            let mut f = vec![("q", int(*req)), ("k", id_v(*k))];
            f.extend(record_fields(value));
            msg("store", f)
        }
        Message::Stored { req, ok } => {
            msg("stored", vec![("q", int(*req)), ("ok", int(*ok as u64))])
        }
        Message::Fetch { req, key: k, kind } => {
            let mut f = vec![("q", int(*req)), ("k", id_v(*k))];
            if *kind != SWARM_LIST {
                f.push(("y", kind_v(*kind)));
            }
            msg("fetch", f)
        }
        Message::Fetched { req, ready, value } => {
            let mut f = vec![("q", int(*req)), ("ready", int(*ready as u64))];
            f.extend(record_fields(value));
            msg("fetched", f)
        }
        Message::Handoff { req, upto, after } => {
            let mut f = vec![("q", int(*req)), ("k", id_v(*upto))];
            if let Some(a) = after {
                f.push(("a", id_v(*a)));
            }
            msg("handoff", f)
        }
        Message::HandoffData { req, keys, next } => {
            let list = keys
                .iter()
                .map(|(k, value)| keyed_record_v(*k, value))
                .collect();
            let mut f = vec![("q", int(*req)), ("l", Value::List(list))];
            if let Some(n) = next {
                f.push(("n", id_v(*n)));
            }
            msg("handoff_data", f)
        }
        Message::Digest { req, records } => {
            let list = records
                .iter()
                .map(|(k, kind, v)| {
                    Value::List(vec![
                        id_v(*k),
                        int(*kind as u64),
                        int(v.seq),
                        bytes(v.hash.to_be_bytes().to_vec()),
                        int(v.life_ms),
                        int(v.items),
                    ])
                })
                .collect();
            msg("digest", vec![("q", int(*req)), ("l", Value::List(list))])
        }
        Message::Wanted { req, records } => {
            let list = records
                .iter()
                .map(|(k, kind)| Value::List(vec![id_v(*k), int(*kind as u64)]))
                .collect();
            msg("wanted", vec![("q", int(*req)), ("l", Value::List(list))])
        }
    }
}
