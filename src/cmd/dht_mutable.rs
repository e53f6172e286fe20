//! `songswarm dht put --mutable NAME VALUE` and `dht get OWNER/NAME`: a
//! signed value under the user's key, replicated like every record (the
//! BEP 44 machinery of playlists, with the value a bencoded string).

use std::net::SocketAddr;
use std::time::Duration;

use bendy::value::Value;
use serde::Serialize;

use super::output::{Answer, Event, Output};
use super::playlist::IdentityArgs;
use super::CmdError;
use crate::chord::client::ChordClient;
use crate::chord::records::{decode_one, target};
use crate::id::Id;
use crate::identity::{hex, Identity};
use crate::playlist::ring::{self, PlaylistError};
use crate::playlist::{check_name, FormError, Part, PlaylistRef};

/// Longest wait for one answer of the ring.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A signed value as `dht put --mutable` and `dht get` print it.
#[derive(Debug, Serialize)]
pub struct MutableView {
    /// The key it lives at: SHA-1(owner ‖ name).
    pub key: Id,
    /// OWNER/NAME, as `dht get` takes it.
    pub name: String,
    /// Its version.
    pub seq: u64,
    /// The value (a bencoded string, shown as text); None if the item
    /// holds another bencoded value.
    pub value: Option<String>,
}

impl Answer for MutableView {
    fn to_text(&self) -> String {
        let value = self.value.as_deref().unwrap_or("(not a string)");
        format!(
            "{} (version {}, key {}): {value}",
            self.name, self.seq, self.key
        )
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Signs `value` under `name` as the next version of the user's item and
/// writes it with compare-and-swap on the version read.
pub async fn put(
    node: SocketAddr,
    identity: &IdentityArgs,
    name: &str,
    value: &str,
    json: bool,
) -> Result<(), CmdError> {
    check_name(name).map_err(PlaylistError::from)?;
    let me = Identity::load_or_create(&identity.dir())?;
    let key = target(&me.public(), name.as_bytes());
    let mut ring_node = ChordClient::connect(node, TIMEOUT).await?;
    let held = ring::read_item(&mut ring_node, key).await?;
    if held.as_ref().is_some_and(|i| Part::decode(&i.v).is_ok()) {
        // The same name would replace a playlist of the user's.
        return Err(PlaylistError::Form(FormError::BadName {
            name: name.to_string(),
            why: "is the name of one of your playlists",
        })
        .into());
    }
    let expected = held.map_or(0, |i| i.seq);
    let mut v = format!("{}:", value.len()).into_bytes();
    v.extend_from_slice(value.as_bytes());
    let what = format!("value {name:?}");
    let seq = ring::write_item(
        &mut ring_node,
        me.signing_key(),
        name.as_bytes(),
        v,
        expected,
        &what,
    )
    .await?;
    let view = MutableView {
        key,
        name: format!("{}/{name}", hex(&me.public())),
        seq,
        value: Some(value.to_string()),
    };
    Output::new(json).print(&Event::Answer(&view));
    Ok(())
}

/// Reads the signed value OWNER/NAME and prints it.
pub async fn get(node: SocketAddr, arg: &str, json: bool) -> Result<(), CmdError> {
    let r = PlaylistRef::parse(arg)
        .unwrap_or_else(|| {
            Err(FormError::BadRef {
                arg: arg.to_string(),
            })
        })
        .map_err(PlaylistError::from)?;
    let key = r.key();
    let mut ring_node = ChordClient::connect(node, TIMEOUT).await?;
    let item = ring::read_item(&mut ring_node, key)
        .await?
        .ok_or_else(|| PlaylistError::NotFound(r.to_string()))?;
    let value = match decode_one(&item.v) {
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    };
    let view = MutableView {
        key,
        name: r.to_string(),
        seq: item.seq,
        value,
    };
    Output::new(json).print(&Event::Answer(&view));
    Ok(())
}
