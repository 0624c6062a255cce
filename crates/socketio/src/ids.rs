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
