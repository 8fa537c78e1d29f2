//! What can go wrong with the ledger: its file, its schema, or a rule of the ledger's.

use std::fmt;

/// A ledger error.
#[derive(Debug)]
pub enum LedgerError {
    /// SQLite refused (the file cannot be opened or written, it is locked past the busy
    /// timeout, it is not a database).
    Sqlite(rusqlite::Error),
    /// PostgreSQL refused, or the connection to it failed.
    Postgres(Box<dyn std::error::Error + Send + Sync>),
    /// This build cannot do what was asked (a ledger engine it was built without).
    Unsupported(&'static str),
    /// The file was written by a newer version of this library.
    NewerSchema { found: i64, supported: i64 },
    /// An item key appears twice (in a manifest, or a manifest and the ledger disagree).
    DuplicateKey(String),
    /// A key already in the ledger comes with another input (a changed manifest row).
    InputChanged(String),
    /// No item has this key.
    NoSuchItem(String),
    /// A step asked of an item in a phase where it does not apply (a bug of the runner).
    WrongPhase {
        key: String,
        phase: String,
        step: &'static str,
    },
    /// An item's row changed under this connection as it wrote a step, twice in a row: another
    /// process is running the same batch.
    Conflict(String),
    /// A stored value could not be read back (edited by hand, or written by a bug).
    Corrupt(String),
    /// A reservation would take the batch's committed credits past its budget (nothing was
    /// written); `committed` is what the batch's other items hold.
    OverBudget { committed: f64, limit: f64 },
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Sqlite(error) => write!(f, "ledger: {error}"),
            LedgerError::Postgres(error) => {
                // "db error" alone says nothing: the server's own words are in the source.
                write!(f, "ledger (PostgreSQL): {error}")?;
                let mut source = error.source();
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            LedgerError::Unsupported(what) => write!(f, "ledger: {what}"),
            LedgerError::NewerSchema { found, supported } => write!(
                f,
                "ledger: the file has schema version {found}, newer than this version supports ({supported}); upgrade removebgvideo"
            ),
            LedgerError::DuplicateKey(key) => {
                write!(f, "ledger: item key {key:?} is used twice")
            }
            LedgerError::InputChanged(key) => write!(
                f,
                "ledger: item {key:?} is already in the ledger with another input; give the changed row a new key"
            ),
            LedgerError::NoSuchItem(key) => write!(f, "ledger: no item has the key {key:?}"),
            LedgerError::WrongPhase { key, phase, step } => write!(
                f,
                "ledger: item {key:?} is {phase}, where {step} does not apply"
            ),
            LedgerError::Conflict(key) => write!(
                f,
                "ledger: item {key:?} changed under this run: another worker took it over (this one stalled past its lease), or another run of the same batch is going on; this run stops, and the items it still holds go to the others"
            ),
            LedgerError::Corrupt(what) => write!(f, "ledger: unreadable value: {what}"),
            LedgerError::OverBudget { committed, limit } => write!(
                f,
                "ledger: the reservation would pass the budget ({committed} of {limit} credits committed)"
            ),
        }
    }
}

impl LedgerError {
    /// Whether the error is the database connection's, not the statement's: closed, never
    /// made, or ended by the server (a shutdown, a restart, a failover). The same call may
    /// succeed on a new connection. (SQLite has no connection to lose.)
    pub fn is_connection_lost(&self) -> bool {
        #[cfg(feature = "postgres")]
        if let LedgerError::Postgres(error) = self
            && let Some(error) = error.downcast_ref::<postgres::Error>()
        {
            return match error.as_db_error() {
                // No answer from the server at all: I/O, a closed socket, a failed connect.
                None => true,
                Some(db) => {
                    let code = db.code().code();
                    // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown,
                    // cannot connect now (starting up).
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
                }
            };
        }
        false
    }
}

impl std::error::Error for LedgerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LedgerError::Sqlite(error) => Some(error),
            LedgerError::Postgres(error) => Some(error.as_ref()),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(error: rusqlite::Error) -> Self {
        LedgerError::Sqlite(error)
    }
}
