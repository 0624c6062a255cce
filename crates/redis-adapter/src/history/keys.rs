//! The names of the history's Redis keys.

/// The keys under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (e.g. `socket.io`).
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: format!("{prefix}#history#"),
        }
    }

    /// The cluster's one counter of offsets, shared by history appends and the blocks of the
    /// nodes' recovery stores.
    pub(crate) fn offsets(&self) -> String {
        format!("{}offset", self.prefix)
    }

    /// The stream of a room. The namespace's length comes first, so that no namespace and room
    /// pair can spell another's key whatever characters they hold.
    pub(crate) fn room(&self, namespace: &str, room: &str) -> String {
        format!("{}room#{}#{namespace}#{room}", self.prefix, namespace.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous() {
        let keys = Keys::new("socket.io");
        assert_eq!(keys.offsets(), "socket.io#history#offset");
        assert_eq!(keys.room("/", "news"), "socket.io#history#room#1#/#news");
        assert_ne!(keys.room("/a#b", "c"), keys.room("/a", "b#c"));
    }
}
