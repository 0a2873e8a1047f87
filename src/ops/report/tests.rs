//! Unit tests of the pure report core.
