//! Event handlers by name: a socket's own, and those every socket of a namespace shares.

use crate::EventHandler;

/// Handlers by event name. A list, not a map: a socket or a namespace has a few handlers,
/// found faster by a scan than by hashing the name, and an idle socket keeps every byte for the
/// connection's life (a map's hasher state and spare buckets were ~100 B of it).
#[derive(Default)]
pub(crate) struct EventTable(Vec<(Box<str>, EventHandler)>);

impl EventTable {
    /// Sets the handler of `name`, replacing an earlier one.
    pub(crate) fn set(&mut self, name: String, handler: EventHandler) {
        match self.0.iter_mut().find(|(n, _)| **n == *name) {
            Some(entry) => entry.1 = handler,
            None => self.0.push((name.into_boxed_str(), handler)),
        }
    }

    /// The handler of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&EventHandler> {
        self.0
            .iter()
            .find(|(n, _)| **n == *name)
            .map(|(_, handler)| handler)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_name_set_again_replaces_its_handler() {
        let mut table = EventTable::default();
        let first: EventHandler = Arc::new(|_, _| {});
        let second: EventHandler = Arc::new(|_, _| {});
        table.set("a".to_owned(), first.clone());
        table.set("b".to_owned(), first.clone());
        table.set("a".to_owned(), second.clone());
        assert!(table.get("a").is_some_and(|h| Arc::ptr_eq(h, &second)));
        assert!(table.get("b").is_some_and(|h| Arc::ptr_eq(h, &first)));
        assert!(table.get("c").is_none());
        assert_eq!(table.0.len(), 2);
    }
}
