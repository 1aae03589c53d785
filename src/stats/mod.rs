//! Statistics: the records the engine produces, the recorder that owns every
//! histogram and counter, and histogram helpers.

pub mod histogram;
pub mod record;
pub mod recorder;

pub use recorder::{Counts, Recorder, RunStats, WindowSpec, WindowStats};
