//! Facts: placeholder, being written.
