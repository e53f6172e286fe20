//! Chord RPC on the wire: a preamble, then length-prefixed bencoded frames.
//!
//! Each direction of a Chord connection starts with [`PREAMBLE`], whose first
//! byte is not 0x13, so one listener can tell Chord from a BitTorrent
//! handshake by peeking at one byte. Then come frames: a 4-byte big-endian
//! body length and a bencoded dictionary whose `t` key names the frame type.
//! The first frame from the connecting side is a [`Frame::Hello`].
//!
//! Decoding is strict: an unknown type, a missing field, a bad address, a
//! claimed id that is not SHA-1 of the claimed address, or a body longer than
//! the limit is an error, and the caller closes that one connection.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use bendy::decoding::{Decoder as BDecoder, FromBencode};
use bendy::encoding::ToBencode;
use bendy::value::Value;
use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::chord::message::{Message, ReqId};
use crate::chord::records::{Role, WireEntry};
use crate::chord::{LookupInfo, RingInfo};
use crate::id::Id;

/// First bytes of every Chord connection, in each direction.
pub const PREAMBLE: &[u8; 8] = b"SSCHORD1";

/// Deepest bencode nesting any valid frame uses (dict → list → list → list).
const MAX_DEPTH: usize = 6;

/// Why a Chord byte stream was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ChordCodecError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The connection did not start with [`PREAMBLE`].
    #[error("not a Chord connection (bad preamble)")]
    BadPreamble,
    /// A frame longer than the limit was announced.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversize { len: usize, max: usize },
    /// The frame body is not a valid Chord frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// A request from a client (the `dht` commands) to any node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRequest {
    Announce {
        key: Id,
        peer: SocketAddr,
        role: Role,
    },
    Remove {
        key: Id,
        peer: SocketAddr,
    },
    Peers {
        key: Id,
    },
    Lookup {
        key: Id,
    },
    Ring,
}

/// A node's answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    Ok,
    Peers(Vec<(SocketAddr, Role)>),
    Lookup(LookupInfo),
    Ring(RingInfo),
    Error(String),
}

/// Everything that travels on a Chord connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// First frame from the connecting side: a node (with its advertised
    /// address, whose SHA-1 must be `id`) or a client (no address).
    Hello { id: Id, addr: Option<SocketAddr> },
    /// Node-to-node protocol.
    Node(Message),
    /// Client request, answered on the same connection.
    Request { req: ReqId, body: ClientRequest },
    /// Answer to a client request.
    Reply { req: ReqId, body: ClientReply },
}

/// Codec for one Chord connection (both directions).
#[derive(Debug)]
pub struct ChordCodec {
    /// Largest body accepted.
    max_frame: usize,
    /// Set once the peer's preamble was read.
    preamble_read: bool,
    /// Set once ours was written.
    preamble_written: bool,
}

impl ChordCodec {
    /// A codec that refuses bodies above `max_frame` bytes.
    pub fn new(max_frame: usize) -> ChordCodec {
        ChordCodec {
            max_frame,
            preamble_read: false,
            preamble_written: false,
        }
    }
}

impl Decoder for ChordCodec {
    type Item = Frame;
    type Error = ChordCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ChordCodecError> {
        if !self.preamble_read {
            let n = src.len().min(PREAMBLE.len());
            if src[..n] != PREAMBLE[..n] {
                return Err(ChordCodecError::BadPreamble);
            }
            if n < PREAMBLE.len() {
                return Ok(None);
            }
            src.advance(PREAMBLE.len());
            self.preamble_read = true;
        }
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max_frame {
            return Err(ChordCodecError::Oversize {
                len,
                max: self.max_frame,
            });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let body = src.split_to(len);
        decode_frame(&body).map(Some)
    }
}

impl Encoder<Frame> for ChordCodec {
    type Error = ChordCodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), ChordCodecError> {
        let body = encode_frame(&frame)?;
        if body.len() > self.max_frame {
            return Err(ChordCodecError::Oversize {
                len: body.len(),
                max: self.max_frame,
            });
        }
        if !self.preamble_written {
            dst.extend_from_slice(PREAMBLE);
            self.preamble_written = true;
        }
        dst.put_u32(body.len() as u32);
        dst.extend_from_slice(&body);
        Ok(())
    }
}

// ----- encoding -----

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

fn msg(t: &'static str, fields: Vec<(&'static str, Value<'static>)>) -> Dict {
    let mut d = Dict::new();
    d.insert(key("t"), bytes(t));
    for (k, v) in fields {
        d.insert(key(k), v);
    }
    d
}

fn encode_frame(frame: &Frame) -> Result<Vec<u8>, ChordCodecError> {
    let d = match frame {
        Frame::Hello { id, addr } => {
            let mut f = vec![("id", id_v(*id))];
            if let Some(a) = addr {
                f.push(("addr", addr_v(*a)));
            }
            msg("hello", f)
        }
        Frame::Node(m) => encode_message(m),
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
            }
        }
        Frame::Reply { req, body } => {
            let q = ("q", int(*req));
            match body {
                ClientReply::Ok => msg("r_ok", vec![q]),
                ClientReply::Error(e) => msg("r_err", vec![q, ("e", bytes(e.as_bytes()))]),
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
        Message::Store {
            req,
            key: k,
            entries,
        } => msg(
            "store",
            vec![("q", int(*req)), ("k", id_v(*k)), ("e", entries_v(entries))],
        ),
        Message::Stored { req, ok } => {
            msg("stored", vec![("q", int(*req)), ("ok", int(*ok as u64))])
        }
        Message::Fetch { req, key: k } => msg("fetch", vec![("q", int(*req)), ("k", id_v(*k))]),
        Message::Fetched {
            req,
            ready,
            entries,
        } => msg(
            "fetched",
            vec![
                ("q", int(*req)),
                ("ready", int(*ready as u64)),
                ("e", entries_v(entries)),
            ],
        ),
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
                .map(|(k, e)| Value::List(vec![id_v(*k), entries_v(e)]))
                .collect();
            let mut f = vec![("q", int(*req)), ("l", Value::List(list))];
            if let Some(n) = next {
                f.push(("n", id_v(*n)));
            }
            msg("handoff_data", f)
        }
    }
}

// ----- decoding -----

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

fn decode_frame(body: &[u8]) -> Result<Frame, ChordCodecError> {
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
    let f = Fields(d);
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
            entries: as_entries(f.get("e")?, "e")?,
        }),
        "stored" => node(Message::Stored {
            req: f.int("q")?,
            ok: f.flag("ok")?,
        }),
        "fetch" => node(Message::Fetch {
            req: f.int("q")?,
            key: f.id("k")?,
        }),
        "fetched" => node(Message::Fetched {
            req: f.int("q")?,
            ready: f.flag("ready")?,
            entries: as_entries(f.get("e")?, "e")?,
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
                    [k, e] => Ok((as_id(k, "l")?, as_entries(e, "l")?)),
                    _ => Err(bad("field \"l\" has a malformed key")),
                })
                .collect::<Result<_, _>>()?;
            node(Message::HandoffData {
                req: f.int("q")?,
                keys,
                next: f.opt_id("n")?,
            })
        }
        "c_announce" | "c_remove" | "c_peers" | "c_lookup" | "c_ring" => {
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
                _ => ClientRequest::Ring,
            };
            Ok(Frame::Request { req, body })
        }
        "r_ok" | "r_err" | "r_peers" | "r_lookup" | "r_ring" => {
            let req = f.int("q")?;
            let body = match t.as_str() {
                "r_ok" => ClientReply::Ok,
                "r_err" => ClientReply::Error(f.text("e")?),
                "r_peers" => ClientReply::Peers(
                    as_list(f.get("l")?, "l")?
                        .iter()
                        .map(|item| match as_list(item, "l")? {
                            [a, r] => Ok((as_addr(a, "l")?, as_role(r, "l")?)),
                            _ => Err(bad("field \"l\" has a malformed peer")),
                        })
                        .collect::<Result<_, _>>()?,
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
