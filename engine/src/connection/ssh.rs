//! SSH connection (russh). Filled in by the SSH transport work.
