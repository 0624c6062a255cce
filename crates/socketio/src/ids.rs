//! Socket ids and room names.

use std::fmt;
use std::sync::Arc;

use ferrio_engineio::Sid;

/// The id of a socket in a namespace, as the client sees it (`socket.id`).
///
/// Clients speaking protocol v5 get a fresh random id per namespace connection. socket.io-client
/// v2 computes its id itself: the Engine.IO session id in `/`, `<namespace>#<session id>`
/// elsewhere, and the server must use the same.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(Arc<str>);

impl SocketId {
    /// A fresh random id.
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; Sid::RANDOM_BYTES];
        // Socket ids are not secrets (they are shared with other clients in rooms); a failing
        // random source still yields a unique id through the clock fallback below.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes.copy_from_slice(&nanos.to_le_bytes()[..Sid::RANDOM_BYTES]);
        }
        Self(Arc::from(Sid::from_random(bytes).as_str()))
    }

    /// The id a v2 client computes for itself.
    pub(crate) fn for_v2_client(nsp: &str, sid: Sid) -> Self {
        if nsp == "/" {
            Self(Arc::from(sid.as_str()))
        } else {
            Self(Arc::from(format!("{nsp}#{sid}")))
        }
    }

    /// Wraps an id received from elsewhere (another node, an API call).
    pub fn from_string(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The room every socket is in, named after its id.
    pub fn room(&self) -> Room {
        self.0.clone()
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketId({})", &self.0)
    }
}

impl AsRef<str> for SocketId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A room name. Cheap to clone: one name is shared by every membership that mentions it.
pub type Room = Arc<str>;

/// Things that name one or more rooms: `"a"`, `String`, `vec!["a", "b"]`, `["a", "b"]`, a
/// [`SocketId`] (its own room).
pub trait IntoRooms {
    /// The rooms named.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![Arc::from(self)]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Arc::from(self)]
    }
}

impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Arc::from(self.as_str())]
    }
}

impl IntoRooms for Room {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}

impl IntoRooms for SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.room()]
    }
}

impl IntoRooms for &SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.room()]
    }
}

impl<T: IntoRooms> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

impl<T: IntoRooms, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

/// A fast hasher for maps keyed by [`SocketId`] (a namespace's sockets, a room's members).
///
/// The default hasher (SipHash) resists keys chosen to collide, at about 150 instructions per
/// 20-byte id: a tenth of the server's work per delivery of a broadcast, which looks every
/// recipient up. Socket ids are drawn by the server from the OS random source (or derived from
/// the random session id for v2 clients), so no client chooses the keys these maps store: a
/// multiply-and-rotate over 8-byte words is enough to spread them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    /// An odd constant with well-mixed bits (the golden ratio's).
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        // The last multiply leaves the high bits (which hashbrown's control bytes use) mixed.
        self.0
    }
}

/// Builds [`IdHasher`]s.
pub(crate) type BuildIdHasher = std::hash::BuildHasherDefault<IdHasher>;

/// A map keyed by socket id.
pub(crate) type IdMap<V> = std::collections::HashMap<SocketId, V, BuildIdHasher>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn random_ids_spread_over_the_hash() {
        let hashes: std::collections::HashSet<u64> = (0..10_000)
            .map(|_| BuildIdHasher::default().hash_one(SocketId::random()))
            .collect();
        assert_eq!(hashes.len(), 10_000);
        // hashbrown reads its control byte from the top 7 bits: they must vary too.
        let tops: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tops.len(), 128);
    }
}
