//! drover's engine: everything between a playbook on disk and events about
//! what happened on the hosts.
//!
//! Layout:
//! - [`yaml`] is the only file that calls the YAML parser; it turns text into
//!   typed raw structs or JSON values and reports `file:line:col`.
//! - [`model`] holds the raw playbook types (what the user wrote) and their
//!   loading (roles, includes, vars files).
//! - [`inventory`] reads Ansible INI/YAML inventories and matches host patterns.
//! - [`template`] renders handlebars templates strictly and evaluates `when:`.
//! - [`vars`] merges variables by Ansible's precedence.
//! - [`args`] checks and reads module arguments (Ansible truthiness, modes).
//! - [`module`] defines the module contract: observe (probes) → plan (pure)
//!   → the engine applies the steps. Modules never see check mode.
//! - [`dag`] expands plays × hosts into a petgraph DAG of (task, host) nodes.
//! - [`exec`] runs the DAG on tokio, bounded by `--forks`, and emits events.
//! - [`connection`] is the transport trait with the `local` and `ssh` kinds.
//! - [`facts`] gathers host facts in one round trip.
//! - [`event`] is what the engine tells the outside world; it never prints.
//!
//! The engine does not parse command lines, draw progress bars or print.

pub mod args;
pub mod connection;
pub mod dag;
pub mod event;
pub mod exec;
pub mod facts;
pub mod inventory;
pub mod model;
pub mod module;
pub mod template;
pub mod vars;
pub mod yaml;
