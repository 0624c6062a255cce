//! Blocking connections to Redis for the store's blocking calls (reads, which the store's
//! trait runs on blocking threads; block reservations, from the SQLite writer's thread; the
//! durability check). A few are kept for reuse; one that failed is dropped.

use std::sync::Mutex;
use std::time::Duration;

use ferrio_history::HistoryError;

/// Most idle connections kept.
const MAX_IDLE: usize = 4;

/// The pool.
pub(crate) struct SyncPool {
    client: redis::Client,
    connect_timeout: Duration,
    response_timeout: Duration,
    idle: Mutex<Vec<redis::Connection>>,
}

impl SyncPool {
    pub(crate) fn new(
        client: redis::Client,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        Self {
            client,
            connect_timeout,
            response_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `command` on a connection (an idle one, or a new one); the connection goes back to
    /// the pool only if the command succeeded. Blocks, within the two timeouts.
    pub(crate) fn query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, HistoryError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => self.connect()?,
        };
        match command.query::<T>(&mut connection) {
            Ok(value) => {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(connection);
                }
                Ok(value)
            }
            Err(error)
                if error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal() =>
            {
                Err(HistoryError::Unavailable(error.to_string()))
            }
            Err(error) => Err(HistoryError::WriteFailed(format!("redis: {error}"))),
        }
    }

    fn connect(&self) -> Result<redis::Connection, HistoryError> {
        let unavailable = |e: redis::RedisError| HistoryError::Unavailable(e.to_string());
        let connection = self
            .client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(unavailable)?;
        connection
            .set_read_timeout(Some(self.response_timeout))
            .map_err(unavailable)?;
        connection
            .set_write_timeout(Some(self.response_timeout))
            .map_err(unavailable)?;
        Ok(connection)
    }
}
