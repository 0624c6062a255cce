//! What can go wrong with a store.

/// An error of a history store.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database refused an operation (disk full, file not writable, corrupt file...).
    #[cfg(feature = "sqlite")]
    #[error("history database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The store's directory could not be created.
    #[error("cannot create the history directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A stored value could not be read back (written by an incompatible version).
    #[error("history data is not readable: {0}")]
    Corrupt(String),
    /// A batch of writes could not be committed; nothing of it is stored.
    #[error("writing history failed: {0}")]
    WriteFailed(String),
    /// The store's writer has stopped (the store was closed, or its thread failed).
    #[error("the history writer has stopped")]
    Closed,
    /// A store on another server (Redis) could not be reached or did not answer in time: the
    /// operation is not acknowledged (an append whose answer was lost may still be stored).
    #[error("the history store is unreachable: {0}")]
    Unavailable(String),
    /// A read asked for more messages than allowed.
    #[error("limit {limit} is out of range: 1 to {max}")]
    LimitOutOfRange {
        /// The limit asked for.
        limit: usize,
        /// The largest limit allowed.
        max: usize,
    },
}
