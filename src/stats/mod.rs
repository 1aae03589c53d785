//! Statistics: the records the engine produces, the recorder that owns every
//! histogram and counter, histogram helpers, and change points in a series of runs.

pub mod changepoint;
pub mod histogram;
pub mod record;
pub mod recorder;

pub use recorder::{Counts, Recorder, RunStats, WindowSpec, WindowStats};
