//! The sandbox's parsers of untrusted input, gathered for fuzzing and property tests. Each
//! never panics, whatever its input.

pub use crate::faults::parse_header as parse_fault_header;
pub use crate::outputs::parse_range;
pub use crate::uploads::mp4_duration;
