//! The BEP 10 extension protocol's own messages: the extension handshake
//! (extended message id 0), and BEP 11 peer exchange (`ut_pex`). They
//! travel inside the peer wire's extended messages (`wire::peer`).

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;

/// Our extension message id for `ut_pex` in the `m` dictionary we send.
pub const UT_PEX_ID: u8 = 1;

/// An extension message that is not what it should be (a bencoded
/// dictionary of the right shape). It closes the connection when it is the
/// extension handshake; a bad peer exchange message is ignored.
#[derive(Debug, thiserror::Error)]
#[error("malformed extension handshake: {0}")]
pub struct ExtensionError(pub String);

/// The BEP 10 extension handshake (extended message id 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// Extension name → the id the sender wants to receive it under (0 = off).
    pub m: Vec<(String, u8)>,
    /// Client name and version.
    pub v: Option<String>,
    /// The sender's listen port (lets us dial an incoming peer back later).
    pub p: Option<u16>,
    /// How many outstanding requests the sender queues.
    pub reqq: Option<u32>,
    /// Size of the sender's `info` dictionary (BEP 9), when it has it.
    pub metadata_size: Option<u64>,
    /// songswarm's own key `stream`: the sender plays the torrent while it
    /// downloads, so a super-seed should show it every piece (other
    /// clients ignore the key).
    pub stream: bool,
}

impl ExtensionHandshake {
    /// Ours: advertises `ut_pex`, `ut_metadata` with the size of our `info`
    /// dictionary when we serve it, our client name, listen port and queue depth.
    pub fn ours(
        listen_port: Option<u16>,
        reqq: u32,
        metadata_size: Option<u64>,
    ) -> ExtensionHandshake {
        let mut m = vec![("ut_pex".to_string(), UT_PEX_ID)];
        if metadata_size.is_some() {
            m.push((
                crate::wire::metadata::EXTENSION_NAME.to_string(),
                crate::wire::metadata::OUR_ID,
            ));
        }
        ExtensionHandshake {
            m,
            v: Some(format!("songswarm {}", env!("CARGO_PKG_VERSION"))),
            p: listen_port,
            reqq: Some(reqq),
            metadata_size,
            stream: false,
        }
    }

    /// The same, saying whether we play the torrent while it downloads.
    pub fn streaming(mut self, stream: bool) -> ExtensionHandshake {
        self.stream = stream;
        self
    }

    /// The id the peer wants extension `name` sent under, if it speaks it.
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m
            .iter()
            .find(|(n, id)| n == name && *id != 0)
            .map(|(_, id)| *id)
    }

    /// Bencodes the dictionary.
    pub fn to_bytes(&self) -> Bytes {
        let mut enc = bendy::encoding::Encoder::new();
        let mut m = self.m.clone();
        m.sort();
        let result = enc.emit_dict(|mut d| {
            d.emit_pair_with(b"m", |e| {
                e.emit_dict(|mut md| {
                    for (name, id) in &m {
                        md.emit_pair(name.as_bytes(), u64::from(*id))?;
                    }
                    Ok(())
                })
            })?;
            if let Some(size) = self.metadata_size {
                d.emit_pair(b"metadata_size", size)?;
            }
            if let Some(p) = self.p {
                d.emit_pair(b"p", u64::from(p))?;
            }
            if let Some(q) = self.reqq {
                d.emit_pair(b"reqq", u64::from(q))?;
            }
            if self.stream {
                d.emit_pair(b"stream", 1u64)?;
            }
            if let Some(v) = &self.v {
                d.emit_pair(b"v", v.as_str())?;
            }
            Ok(())
        });
        // Keys are emitted in sorted order and every value is complete, so
        // encoding cannot fail; an empty dict is a safe fallback regardless.
        match result.and_then(|_| enc.get_output()) {
            Ok(bytes) => Bytes::from(bytes),
            Err(_) => Bytes::from_static(b"de"),
        }
    }

    /// Parses the dictionary; unknown keys and ill-typed values are skipped.
    pub fn parse(payload: &[u8]) -> Result<ExtensionHandshake, ExtensionError> {
        use bendy::decoding::{Decoder as BDecoder, Object};
        let err = |e: bendy::decoding::Error| ExtensionError(e.to_string());
        let mut dec = BDecoder::new(payload).with_max_depth(8);
        let mut out = ExtensionHandshake::default();
        let Some(Object::Dict(mut dict)) = dec.next_object().map_err(err)? else {
            return Err(ExtensionError("not a dictionary".into()));
        };
        while let Some((key, value)) = dict.next_pair().map_err(err)? {
            match (key, value) {
                (b"m", Object::Dict(mut m)) => {
                    while let Some((name, id)) = m.next_pair().map_err(err)? {
                        if let Object::Integer(n) = id {
                            if let (Ok(name), Ok(n)) = (std::str::from_utf8(name), n.parse::<u8>())
                            {
                                out.m.push((name.to_string(), n));
                            }
                        }
                    }
                }
                (b"metadata_size", Object::Integer(n)) => out.metadata_size = n.parse().ok(),
                (b"p", Object::Integer(n)) => out.p = n.parse().ok(),
                (b"reqq", Object::Integer(n)) => out.reqq = n.parse().ok(),
                (b"stream", Object::Integer(n)) => out.stream = n != "0",
                (b"v", Object::Bytes(v)) => out.v = Some(String::from_utf8_lossy(v).into_owned()),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Encodes a BEP 11 `ut_pex` message body listing `added` (IPv4 only; the
/// compact format of IPv6 peers goes in `added6`, which we do not send).
pub fn encode_pex(added: &[SocketAddr]) -> Bytes {
    let mut compact = Vec::with_capacity(added.len() * 6);
    for addr in added {
        if let SocketAddr::V4(v4) = addr {
            compact.extend_from_slice(&v4.ip().octets());
            compact.extend_from_slice(&v4.port().to_be_bytes());
        }
    }
    let flags = vec![0u8; compact.len() / 6];
    let mut enc = bendy::encoding::Encoder::new();
    let result = enc.emit_dict(|mut d| {
        d.emit_pair_with(b"added", |e| e.emit_bytes(&compact))?;
        d.emit_pair_with(b"added.f", |e| e.emit_bytes(&flags))?;
        d.emit_pair_with(b"dropped", |e| e.emit_bytes(&[]))
    });
    match result.and_then(|_| enc.get_output()) {
        Ok(bytes) => Bytes::from(bytes),
        Err(_) => Bytes::from_static(b"de"),
    }
}

/// Parses the `added` list of a BEP 11 `ut_pex` message (IPv4 compact form).
pub fn parse_pex(payload: &[u8]) -> Result<Vec<SocketAddr>, ExtensionError> {
    use bendy::decoding::{Decoder as BDecoder, Object};
    let err = |e: bendy::decoding::Error| ExtensionError(e.to_string());
    let mut dec = BDecoder::new(payload).with_max_depth(4);
    let Some(Object::Dict(mut dict)) = dec.next_object().map_err(err)? else {
        return Err(ExtensionError("pex: not a dictionary".into()));
    };
    let mut out = Vec::new();
    while let Some((key, value)) = dict.next_pair().map_err(err)? {
        if let (b"added", Object::Bytes(compact)) = (key, value) {
            for c in compact.chunks_exact(6) {
                let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
                let port = u16::from_be_bytes([c[4], c[5]]);
                out.push(SocketAddr::from((ip, port)));
            }
        }
    }
    Ok(out)
}
