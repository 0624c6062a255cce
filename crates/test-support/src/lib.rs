//! Helpers shared by Ferrio's test suites. A dev-dependency only: nothing here ships.

mod counting_recorder;
pub mod nginx;
pub mod pki;

pub use counting_recorder::CountingRecorder;
