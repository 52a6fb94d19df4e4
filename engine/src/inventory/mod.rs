//! Inventory: placeholder, being written.
