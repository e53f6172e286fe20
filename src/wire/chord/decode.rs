//! Bencoded bodies to frames, strictly: an unknown type, a missing or
//! mistyped field, a bad address or a lying hello is an error.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use bendy::decoding::{Decoder as BDecoder, FromBencode};
use bendy::value::Value;

use super::message::{Hit, Kind, Message, Role, Song, Version, WireEntry, WireRecord, SWARM_LIST};
use super::{ChordCodecError, ClientReply, ClientRequest, Frame, LookupInfo, RingInfo};
use crate::id::Id;

/// Deepest bencode nesting any valid frame uses (dict → list → list → list).
const MAX_DEPTH: usize = 6;

fn bad(why: impl Into<String>) -> ChordCodecError {
    ChordCodecError::Malformed(why.into())
}

/// Field access on a decoded dictionary, with errors naming the field.
struct Fields<'a>(BTreeMap<Cow<'a, [u8]>, Value<'a>>);

impl<'a> Fields<'a> {
    fn opt(&self, k: &str) -> Option<&Value<'a>> {
        self.0.get(k.as_bytes())
    }
    fn get(&self, k: &str) -> Result<&Value<'a>, ChordCodecError> {
        self.opt(k)
            .ok_or_else(|| bad(format!("missing field {k:?}")))
    }
    fn int(&self, k: &str) -> Result<u64, ChordCodecError> {
        as_int(self.get(k)?, k)
    }
    fn flag(&self, k: &str) -> Result<bool, ChordCodecError> {
        Ok(self.int(k)? != 0)
    }
    fn id(&self, k: &str) -> Result<Id, ChordCodecError> {
        as_id(self.get(k)?, k)
    }
    fn opt_id(&self, k: &str) -> Result<Option<Id>, ChordCodecError> {
        self.opt(k).map(|v| as_id(v, k)).transpose()
    }
    fn addr(&self, k: &str) -> Result<SocketAddr, ChordCodecError> {
        as_addr(self.get(k)?, k)
    }
    fn opt_addr(&self, k: &str) -> Result<Option<SocketAddr>, ChordCodecError> {
        self.opt(k).map(|v| as_addr(v, k)).transpose()
    }
    fn addrs(&self, k: &str) -> Result<Vec<SocketAddr>, ChordCodecError> {
        as_list(self.get(k)?, k)?
            .iter()
            .map(|v| as_addr(v, k))
            .collect()
    }
    fn text(&self, k: &str) -> Result<String, ChordCodecError> {
        Ok(String::from_utf8_lossy(as_bytes(self.get(k)?, k)?).into_owned())
    }
}

fn as_int(v: &Value, k: &str) -> Result<u64, ChordCodecError> {
    match v {
        Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(bad(format!("field {k:?} is not a non-negative integer"))),
    }
}

fn as_bytes<'v>(v: &'v Value, k: &str) -> Result<&'v [u8], ChordCodecError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(bad(format!("field {k:?} is not a byte string"))),
    }
}

fn as_list<'v, 'a>(v: &'v Value<'a>, k: &str) -> Result<&'v [Value<'a>], ChordCodecError> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err(bad(format!("field {k:?} is not a list"))),
    }
}

fn as_id(v: &Value, k: &str) -> Result<Id, ChordCodecError> {
    let b = as_bytes(v, k)?;
    let arr: [u8; 20] = b
        .try_into()
        .map_err(|_| bad(format!("field {k:?} is not a 20-byte id")))?;
    Ok(Id(arr))
}

fn as_addr(v: &Value, k: &str) -> Result<SocketAddr, ChordCodecError> {
    let b = as_bytes(v, k)?;
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("field {k:?} is not an ip:port address")))
}

fn as_role(v: &Value, k: &str) -> Result<Role, ChordCodecError> {
    match as_int(v, k)? {
        0 => Ok(Role::Leecher),
        1 => Ok(Role::Seeder),
        _ => Err(bad(format!("field {k:?} is not a role"))),
    }
}

/// A song: `[info-hash, file, title, artist, album, duration]`.
fn as_song(items: &[Value]) -> Result<Song, ChordCodecError> {
    let text = |v: &Value| as_bytes(v, "l").map(|b| String::from_utf8_lossy(b).into_owned());
    match items {
        [ih, file, title, artist, album, duration, ..] => Ok(Song {
            info_hash: as_id(ih, "l")?,
            file: as_int(file, "l")?.min(u32::MAX as u64) as u32,
            title: text(title)?,
            artist: text(artist)?,
            album: text(album)?,
            duration_ms: as_int(duration, "l")?,
        }),
        _ => Err(bad("field \"l\" has a malformed song")),
    }
}

/// A search hit: a song's six items, then seeders and peers.
fn as_hit(v: &Value) -> Result<Hit, ChordCodecError> {
    let items = as_list(v, "l")?;
    match items {
        [_, _, _, _, _, _, seeders, peers] => Ok(Hit {
            song: as_song(items)?,
            seeders: as_int(seeders, "l")?.min(u32::MAX as u64) as u32,
            peers: as_int(peers, "l")?.min(u32::MAX as u64) as u32,
        }),
        _ => Err(bad("field \"l\" has a malformed hit")),
    }
}

/// A record kind's tag: any but [`SWARM_LIST`], whose frames carry none.
fn as_kind(v: &Value, k: &str) -> Result<Kind, ChordCodecError> {
    match Kind::try_from(as_int(v, k)?) {
        Ok(kind) if kind != SWARM_LIST => Ok(kind),
        _ => Err(bad(format!("field {k:?} is not a record kind"))),
    }
}

/// Any record kind, swarm lists included.
fn as_record_kind(v: &Value) -> Result<Kind, ChordCodecError> {
    Kind::try_from(as_int(v, "l")?).map_err(|_| bad("field \"l\" is not a record kind"))
}

/// The record a frame carries: a tagged kind (`y`, `v`), else a swarm list (`e`).
fn as_record(f: &Fields) -> Result<WireRecord, ChordCodecError> {
    match f.opt("y") {
        Some(y) => Ok(WireRecord::Tagged {
            kind: as_kind(y, "y")?,
            body: as_bytes(f.get("v")?, "v")?.to_vec(),
        }),
        None => Ok(WireRecord::Swarm(as_entries(f.get("e")?, "e")?)),
    }
}

fn as_entries(v: &Value, k: &str) -> Result<Vec<WireEntry>, ChordCodecError> {
    as_list(v, k)?
        .iter()
        .map(|e| match as_list(e, k)? {
            [p, t, r, x] => Ok(WireEntry {
                peer: as_addr(p, k)?,
                ttl_ms: as_int(t, k)?,
                role: as_role(r, k)?,
                removed: as_int(x, k)? != 0,
            }),
            _ => Err(bad(format!("field {k:?} has a malformed entry"))),
        })
        .collect()
}

/// A frame and the feature bits it carried under `f` (0 if none; only a
/// hello and node frames carry them).
pub(super) fn decode_frame(body: &[u8]) -> Result<(Frame, u64), ChordCodecError> {
    let f = parse(body)?;
    let frame = decode_dict(&f)?;
    let features = match frame {
        Frame::Hello { .. } | Frame::Node(_) => f.opt("f").map_or(Ok(0), |v| as_int(v, "f"))?,
        _ => 0,
    };
    Ok((frame, features))
}

/// The frame body as a dictionary.
fn parse(body: &[u8]) -> Result<Fields<'_>, ChordCodecError> {
    // A small depth limit: the generic decoder recurses, and a hostile frame
    // of nested lists must not exhaust the stack.
    let mut decoder = BDecoder::new(body).with_max_depth(MAX_DEPTH);
    let object = decoder
        .next_object()
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("empty frame"))?;
    let value = Value::decode_bencode_object(object).map_err(|e| bad(e.to_string()))?;
    if decoder
        .next_object()
        .map_err(|e| bad(e.to_string()))?
        .is_some()
    {
        return Err(bad("trailing data after the frame"));
    }
    let Value::Dict(d) = value else {
        return Err(bad("frame is not a dictionary"));
    };
    Ok(Fields(d))
}

/// The frame a dictionary spells.
fn decode_dict(f: &Fields) -> Result<Frame, ChordCodecError> {
    let t = f.text("t")?;
    let node = |m: Message| Ok(Frame::Node(m));
    match t.as_str() {
        "hello" => {
            let id = f.id("id")?;
            let addr = f.opt_addr("addr")?;
            if let Some(a) = addr {
                if Id::of_addr(a) != id {
                    return Err(bad(format!("claimed id {id} is not SHA-1 of {a}")));
                }
            }
            Ok(Frame::Hello { id, addr })
        }
        "ping" => node(Message::Ping { req: f.int("q")? }),
        "pong" => node(Message::Pong { req: f.int("q")? }),
        "get_state" => node(Message::GetState { req: f.int("q")? }),
        "state" => node(Message::State {
            req: f.int("q")?,
            pred: f.opt_addr("p")?,
            succs: f.addrs("s")?,
        }),
        "notify" => node(Message::Notify),
        "find" => node(Message::FindSuccessor {
            req: f.int("q")?,
            key: f.id("k")?,
        }),
        "found" => node(Message::Found {
            req: f.int("q")?,
            succs: f.addrs("s")?,
        }),
        "closer" => node(Message::Closer {
            req: f.int("q")?,
            nodes: f.addrs("s")?,
        }),
        "store" => node(Message::Store {
            req: f.int("q")?,
            key: f.id("k")?,
            value: as_record(f)?,
        }),
        "stored" => node(Message::Stored {
            req: f.int("q")?,
            ok: f.flag("ok")?,
        }),
        "fetch" => node(Message::Fetch {
            req: f.int("q")?,
            key: f.id("k")?,
            kind: f.opt("y").map_or(Ok(SWARM_LIST), |y| as_kind(y, "y"))?,
        }),
        "fetched" => node(Message::Fetched {
            req: f.int("q")?,
            ready: f.flag("ready")?,
            value: as_record(f)?,
        }),
        "handoff" => node(Message::Handoff {
            req: f.int("q")?,
            upto: f.id("k")?,
            after: f.opt_id("a")?,
        }),
        "handoff_data" => {
            let keys = as_list(f.get("l")?, "l")?
                .iter()
                .map(|item| match as_list(item, "l")? {
                    [k, e] => Ok((as_id(k, "l")?, WireRecord::Swarm(as_entries(e, "l")?))),
                    [k, y, v] => Ok((
                        as_id(k, "l")?,
                        WireRecord::Tagged {
                            kind: as_kind(y, "l")?,
                            body: as_bytes(v, "l")?.to_vec(),
                        },
                    )),
                    _ => Err(bad("field \"l\" has a malformed key")),
                })
                .collect::<Result<_, _>>()?;
            node(Message::HandoffData {
                req: f.int("q")?,
                keys,
                next: f.opt_id("n")?,
            })
        }
        "digest" => {
            let records = as_list(f.get("l")?, "l")?
                .iter()
                .map(|item| match as_list(item, "l")? {
                    [k, y, seq, hash, life, items] => Ok((
                        as_id(k, "l")?,
                        as_record_kind(y)?,
                        Version {
                            seq: as_int(seq, "l")?,
                            hash: u64::from_be_bytes(
                                as_bytes(hash, "l")?
                                    .try_into()
                                    .map_err(|_| bad("field \"l\" has a malformed hash"))?,
                            ),
                            life_ms: as_int(life, "l")?,
                            items: as_int(items, "l")?,
                        },
                    )),
                    _ => Err(bad("field \"l\" has a malformed version")),
                })
                .collect::<Result<_, _>>()?;
            node(Message::Digest {
                req: f.int("q")?,
                records,
            })
        }
        "wanted" => {
            let records = as_list(f.get("l")?, "l")?
                .iter()
                .map(|item| match as_list(item, "l")? {
                    [k, y] => Ok((as_id(k, "l")?, as_record_kind(y)?)),
                    _ => Err(bad("field \"l\" has a malformed key")),
                })
                .collect::<Result<_, _>>()?;
            node(Message::Wanted {
                req: f.int("q")?,
                records,
            })
        }
        "c_announce" | "c_remove" | "c_peers" | "c_lookup" | "c_ring" | "c_search"
        | "c_library" | "c_putv" | "c_getv" | "c_put" | "c_get" => {
            let req = f.int("q")?;
            let body = match t.as_str() {
                "c_announce" => ClientRequest::Announce {
                    key: f.id("k")?,
                    peer: f.addr("p")?,
                    role: as_role(f.get("r")?, "r")?,
                },
                "c_remove" => ClientRequest::Remove {
                    key: f.id("k")?,
                    peer: f.addr("p")?,
                },
                "c_peers" => ClientRequest::Peers { key: f.id("k")? },
                "c_lookup" => ClientRequest::Lookup { key: f.id("k")? },
                "c_search" => ClientRequest::Search {
                    query: f.text("s")?,
                    limit: f.int("n")?.min(u32::MAX as u64) as u32,
                },
                "c_library" => ClientRequest::Library {
                    after: f.opt_id("a")?,
                    limit: f.int("n")?.min(u32::MAX as u64) as u32,
                },
                "c_putv" => ClientRequest::PutValue {
                    value: as_bytes(f.get("v")?, "v")?.to_vec(),
                },
                "c_getv" => ClientRequest::GetValue { key: f.id("k")? },
                "c_put" => ClientRequest::Put {
                    key: f.id("k")?,
                    value: as_record(f)?,
                },
                "c_get" => ClientRequest::Get {
                    key: f.id("k")?,
                    kind: as_kind(f.get("y")?, "y")?,
                },
                _ => ClientRequest::Ring,
            };
            Ok(Frame::Request { req, body })
        }
        "r_ok" | "r_err" | "r_peers" | "r_lookup" | "r_ring" | "r_hits" | "r_songs" | "r_value"
        | "r_record" => {
            let req = f.int("q")?;
            let body = match t.as_str() {
                "r_ok" => ClientReply::Ok,
                "r_err" => ClientReply::Error(f.text("e")?),
                "r_record" => ClientReply::Record(as_record(f)?),
                "r_peers" => ClientReply::Peers(
                    as_list(f.get("l")?, "l")?
                        .iter()
                        .map(|item| match as_list(item, "l")? {
                            [a, r] => Ok((as_addr(a, "l")?, as_role(r, "l")?)),
                            _ => Err(bad("field \"l\" has a malformed peer")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                "r_hits" => ClientReply::Hits(
                    as_list(f.get("l")?, "l")?
                        .iter()
                        .map(as_hit)
                        .collect::<Result<_, _>>()?,
                ),
                "r_songs" => ClientReply::Songs {
                    songs: as_list(f.get("l")?, "l")?
                        .iter()
                        .map(|v| as_song(as_list(v, "l")?))
                        .collect::<Result<_, _>>()?,
                    next: f.opt_id("a")?,
                },
                "r_value" => ClientReply::Value(
                    f.opt("v")
                        .map(|v| as_bytes(v, "v").map(<[u8]>::to_vec))
                        .transpose()?,
                ),
                "r_lookup" => ClientReply::Lookup(LookupInfo {
                    key: f.id("k")?,
                    owner: f.addr("o")?,
                    replicas: f.addrs("s")?,
                    hops: f.int("h")?.min(u32::MAX as u64) as u32,
                }),
                _ => ClientReply::Ring(RingInfo {
                    id: f.id("id")?,
                    addr: f.addr("addr")?,
                    predecessor: f.opt_addr("p")?,
                    successors: f.addrs("s")?,
                    fingers: f.int("f")? as usize,
                    keys: f.int("n")? as usize,
                    joined: f.flag("j")?,
                }),
            };
            Ok(Frame::Reply { req, body })
        }
        other => Err(bad(format!("unknown frame type {other:?}"))),
    }
}
