//! How one node's view of the ring prints (`dht ring`).

use crate::chord::RingInfo;

pub(super) fn ring_text(info: &RingInfo) -> String {
    let pred = info
        .predecessor
        .map_or("none".to_string(), |p| p.to_string());
    let mut lines = vec![
        format!("id          {}", info.id),
        format!("address     {}", info.addr),
        format!("predecessor {pred}"),
    ];
    for (i, s) in info.successors.iter().enumerate() {
        lines.push(format!("successor {i} {s}"));
    }
    lines.push(format!("fingers     {}", info.fingers));
    lines.push(format!("keys        {}", info.keys));
    lines.join("\n")
}
