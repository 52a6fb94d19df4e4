//! drover's modules. Each module lives in its own file, starts with a `//!`
//! paragraph saying what it owns, and only observes and plans: the engine
//! applies. [`registry`] returns every module by name.

use drover_engine::module::Registry;

/// All built-in modules.
pub fn registry() -> Registry {
    Registry::new()
}
