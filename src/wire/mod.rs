//! Byte-level codecs. Each speaks one protocol and knows nothing of sockets
//! beyond `tokio_util::codec`.

pub mod chord;
pub mod peer;
