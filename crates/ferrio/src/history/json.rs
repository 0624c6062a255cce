//! History as JSON, the same for the built-in event and the HTTP API.

use std::time::SystemTime;

use ferrio_history::{Page, StoredMessage};
use serde_json::{json, Value};

/// `{offset, event, args, at}`, `at` in milliseconds since the Unix epoch.
pub(crate) fn message(message: &StoredMessage) -> Value {
    let at = message
        .at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    json!({
        "offset": message.offset,
        "event": message.event,
        "args": message.args,
        "at": at,
    })
}

/// `{messages, next, more}`.
pub(crate) fn page(page: &Page) -> Value {
    json!({
        "messages": page.messages.iter().map(message).collect::<Vec<_>>(),
        "next": page.next,
        "more": page.more,
    })
}

/// An offset given as a number or as a string of digits (what a client may hold).
pub(crate) fn offset(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("after must be an offset (a whole number), not {value}"))
}
