//! Every wire format: byte-level codecs that know nothing of sockets beyond
//! `tokio_util::codec`, and the peer handshake exchange, which reads and
//! writes any async stream it is given.

pub mod chord;
pub mod extension;
pub mod handshake;
pub mod metadata;
pub mod peer;
