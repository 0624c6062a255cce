//! The database file: settings and tables.

use rusqlite::Connection;

use crate::HistoryError;

/// Tables and indexes as the first version wrote them; created when missing, so opening an
/// existing file changes nothing. [`migrate`] then adds what later versions need.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    room TEXT NOT NULL,
    event TEXT NOT NULL,
    args TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_room ON history (namespace, room, seq);
CREATE INDEX IF NOT EXISTS history_by_age ON history (at);
CREATE TABLE IF NOT EXISTS packets (
    seq INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    rooms TEXT NOT NULL,
    except_rooms TEXT NOT NULL,
    data BLOB NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS packets_by_namespace ON packets (namespace, at);
CREATE TABLE IF NOT EXISTS sessions (
    namespace TEXT NOT NULL,
    pid TEXT NOT NULL,
    sid TEXT NOT NULL,
    rooms TEXT NOT NULL,
    disconnected_at INTEGER,
    PRIMARY KEY (namespace, pid)
);
";

/// The schema version this code writes, kept in `PRAGMA user_version`. 0: a file written
/// before versions were kept (or a new one), whose `packets` table has no `sent` column.
pub(crate) const VERSION: i32 = 1;

/// The `meta` key holding the end of the reserved block of offsets.
pub(crate) const RESERVED_KEY: &str = "reserved_offsets_end";

/// Opens a connection with the settings every connection of the store uses.
///
/// WAL lets readers run while the writer commits. `synchronous = FULL` makes each commit
/// fsync the WAL, so a committed batch survives a power loss or an OS crash, not only a
/// process kill (with `NORMAL`, WAL commits survive a process kill but the last ones may roll
/// back on power loss). The writer commits batches, so the fsync is paid once per batch.
pub(crate) fn open(path: &std::path::Path) -> Result<Connection, HistoryError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(HistoryError::Corrupt(format!(
            "{}: the database refused WAL mode (journal mode {mode})",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL;")?;
    Ok(conn)
}

/// Creates the tables when missing, then brings an older file up to [`VERSION`].
pub(crate) fn create(conn: &mut Connection) -> Result<(), HistoryError> {
    conn.execute_batch(SCHEMA)?;
    migrate(conn)
}

/// Upgrades the schema of a file written by an earlier version, in one transaction (a crash
/// leaves the file as it was, and the next open upgrades it again).
///
/// Version 1 records the order in which recovery packets were sent (`packets.sent`): a
/// durable message waits for the disk, so its packet can be sent (and recorded) after packets
/// with larger offsets, and a new process must replay them in that order. Packets of an older
/// file get their offset as sending order, the only order it knew.
fn migrate(conn: &mut Connection) -> Result<(), HistoryError> {
    let version: i32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > VERSION {
        return Err(HistoryError::Corrupt(format!(
            "schema version {version} is newer than this version of ferrio knows ({VERSION})"
        )));
    }
    if version == VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    tx.execute_batch(
        "ALTER TABLE packets ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;
         UPDATE packets SET sent = seq;
         CREATE INDEX packets_by_sent ON packets (namespace, sent);",
    )?;
    // Not a bound parameter: PRAGMA takes none; VERSION is a constant.
    tx.execute_batch(&format!("PRAGMA user_version = {VERSION};"))?;
    tx.commit()?;
    Ok(())
}

/// The last sending order given to a recovery packet; the writer continues after it.
pub(crate) fn last_sent(conn: &Connection) -> Result<i64, HistoryError> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(sent), 0) FROM packets", [], |row| {
            row.get(0)
        })?,
    )
}

/// The first offset this process may hand out: past every stored offset and past every
/// offset an earlier process may have handed out without storing it.
pub(crate) fn first_free_offset(conn: &Connection) -> Result<u64, HistoryError> {
    let reserved: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [RESERVED_KEY],
            |row| row.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(1),
            e => Err(e),
        })?;
    let stored: i64 = conn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM history), 0),
                    COALESCE((SELECT MAX(seq) FROM packets), 0))",
        [],
        |row| row.get(0),
    )?;
    let first = reserved.max(stored.saturating_add(1)).max(1);
    u64::try_from(first).map_err(|_| HistoryError::Corrupt(format!("offset {first}")))
}

/// Records that offsets below `end` may be handed out.
pub(crate) fn store_reserved(conn: &Connection, end: u64) -> Result<(), HistoryError> {
    let end = i64::try_from(end).map_err(|_| HistoryError::Corrupt(format!("offset {end}")))?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rusqlite::params![RESERVED_KEY, end],
    )?;
    Ok(())
}
