//! Talking to a node from outside the ring (the `dht` commands).
//!
//! A client connection says hello without an address, then sends requests
//! and reads each answer on the same connection.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::chord::message::ReqId;
use crate::chord::{ChordError, LookupInfo, RingInfo, Role};
use crate::id::Id;
use crate::wire::chord::{
    ChordCodec, ClientReply, ClientRequest, Frame, Hit, Kind, Song, WireRecord,
};

/// Largest answer a client accepts.
const MAX_REPLY: usize = 1 << 20;

/// A connection to one node.
pub struct ChordClient {
    /// The framed connection.
    framed: Framed<TcpStream, ChordCodec>,
    /// Id of the next request.
    next_req: ReqId,
    /// Longest wait for one answer (a quorum operation takes several RPCs).
    timeout: Duration,
}

impl ChordClient {
    /// Connect to the node at `node`; every answer must come within `timeout`.
    pub async fn connect(node: SocketAddr, timeout: Duration) -> Result<ChordClient, ChordError> {
        let unreachable = |e: String| ChordError::Unreachable(format!("{node}: {e}"));
        let stream = tokio::time::timeout(timeout, TcpStream::connect(node))
            .await
            .map_err(|_| unreachable("connect timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let mut framed = Framed::new(stream, ChordCodec::new(MAX_REPLY));
        let hello = Frame::Hello {
            id: Id::default(),
            addr: None,
        };
        framed
            .send(hello)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(ChordClient {
            framed,
            next_req: 1,
            timeout,
        })
    }

    async fn call(&mut self, body: ClientRequest) -> Result<ClientReply, ChordError> {
        let req = self.next_req;
        self.next_req += 1;
        let io = |e: String| ChordError::Unreachable(e);
        self.framed
            .send(Frame::Request { req, body })
            .await
            .map_err(|e| io(e.to_string()))?;
        let frame = tokio::time::timeout(self.timeout, self.framed.next())
            .await
            .map_err(|_| io("no answer in time".into()))?;
        match frame {
            Some(Ok(Frame::Reply {
                req: r,
                body: ClientReply::Error(e),
            })) if r == req => Err(ChordError::Remote(e)),
            Some(Ok(Frame::Reply { req: r, body })) if r == req => Ok(body),
            Some(Ok(other)) => Err(ChordError::Remote(format!("unexpected answer {other:?}"))),
            Some(Err(e)) => Err(io(e.to_string())),
            None => Err(io("connection closed".into())),
        }
    }

    /// Announce `peer` for `info_hash` (acknowledged after W replicas).
    pub async fn announce(
        &mut self,
        info_hash: Id,
        peer: SocketAddr,
        role: Role,
    ) -> Result<(), ChordError> {
        match self
            .call(ClientRequest::Announce {
                key: info_hash,
                peer,
                role,
            })
            .await?
        {
            ClientReply::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Remove `peer` from `info_hash`.
    pub async fn remove(&mut self, info_hash: Id, peer: SocketAddr) -> Result<(), ChordError> {
        match self
            .call(ClientRequest::Remove {
                key: info_hash,
                peer,
            })
            .await?
        {
            ClientReply::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The live peers of `info_hash`.
    pub async fn peers(&mut self, info_hash: Id) -> Result<Vec<(SocketAddr, Role)>, ChordError> {
        match self.call(ClientRequest::Peers { key: info_hash }).await? {
            ClientReply::Peers(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Owner, replica set and hops of `key`.
    pub async fn lookup(&mut self, key: Id) -> Result<LookupInfo, ChordError> {
        match self.call(ClientRequest::Lookup { key }).await? {
            ClientReply::Lookup(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// The songs matching every word of `query`, best first.
    pub async fn search(&mut self, query: &str, limit: u32) -> Result<Vec<Hit>, ChordError> {
        let query = query.to_string();
        match self.call(ClientRequest::Search { query, limit }).await? {
            ClientReply::Hits(hits) => Ok(hits),
            other => Err(unexpected(other)),
        }
    }

    /// One page of the songs whose metadata the node owns, after `after`.
    pub async fn library_page(
        &mut self,
        after: Option<Id>,
        limit: u32,
    ) -> Result<(Vec<Song>, Option<Id>), ChordError> {
        match self.call(ClientRequest::Library { after, limit }).await? {
            ClientReply::Songs { songs, next } => Ok((songs, next)),
            other => Err(unexpected(other)),
        }
    }

    /// Store `value` under its SHA-1 (acknowledged after W replicas).
    pub async fn put_value(&mut self, value: Vec<u8>) -> Result<(), ChordError> {
        match self.call(ClientRequest::PutValue { value }).await? {
            ClientReply::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Merge `value` into the record of its kind at `key` (acknowledged
    /// after W replicas).
    pub async fn put(&mut self, key: Id, value: WireRecord) -> Result<(), ChordError> {
        match self.call(ClientRequest::Put { key, value }).await? {
            ClientReply::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The immutable value under `key`, if the ring holds one.
    pub async fn get_value(&mut self, key: Id) -> Result<Option<Vec<u8>>, ChordError> {
        match self.call(ClientRequest::GetValue { key }).await? {
            ClientReply::Value(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// The record of `kind` at `key`, merged from R replicas.
    pub async fn get(&mut self, key: Id, kind: Kind) -> Result<WireRecord, ChordError> {
        match self.call(ClientRequest::Get { key, kind }).await? {
            ClientReply::Record(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// The node's view of the ring.
    pub async fn ring(&mut self) -> Result<RingInfo, ChordError> {
        match self.call(ClientRequest::Ring).await? {
            ClientReply::Ring(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }
}

/// Follows successor pointers from `start` until they lead back to it and
/// returns the members in ring order (`start` first). A walk that reaches a
/// node twice without returning to `start`, or exceeds `limit` members, is
/// not one ring and is an error that says where it went wrong.
pub async fn walk(
    start: SocketAddr,
    timeout: Duration,
    limit: usize,
) -> Result<Vec<SocketAddr>, ChordError> {
    let mut members = vec![start];
    let mut at = start;
    loop {
        let info = ChordClient::connect(at, timeout).await?.ring().await?;
        let Some(&next) = info.successors.first() else {
            return Ok(members); // a ring of one
        };
        if next == start {
            return Ok(members);
        }
        if members.contains(&next) || members.len() >= limit {
            return Err(ChordError::Remote(format!(
                "successors from {start} do not lead back to it: {at} points to {next} after {} members",
                members.len()
            )));
        }
        members.push(next);
        at = next;
    }
}

/// Lists every song in the ring: walks the members from `start` along
/// their successors and asks each for the songs whose metadata it owns,
/// `page` torrents at a time, handing each page to `each` as it comes.
/// Returns the number of members asked. A song is handed on once: while a
/// member joins, it and its successor may both own its keys for a moment
/// (one that has no predecessor yet owns every key).
pub async fn walk_library(
    start: SocketAddr,
    timeout: Duration,
    page: u32,
    mut each: impl FnMut(SocketAddr, Vec<Song>),
) -> Result<usize, ChordError> {
    let members = walk(start, timeout, 100_000).await?;
    let mut seen = HashSet::new();
    for &member in &members {
        let mut client = ChordClient::connect(member, timeout).await?;
        let mut after = None;
        loop {
            let (mut songs, next) = client.library_page(after, page).await?;
            songs.retain(|s| seen.insert((s.info_hash, s.file)));
            if !songs.is_empty() {
                each(member, songs);
            }
            match next {
                Some(n) if Some(n) != after => after = Some(n),
                _ => break,
            }
        }
    }
    Ok(members.len())
}

fn unexpected(reply: ClientReply) -> ChordError {
    ChordError::Remote(format!("unexpected answer {reply:?}"))
}
