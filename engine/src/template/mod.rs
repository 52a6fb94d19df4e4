//! Templating: placeholder, being written.
