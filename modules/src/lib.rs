//! drover's modules. Each module lives in its own file, starts with a `//!`
//! paragraph saying what it owns, and only observes and plans: the engine
//! applies. [`registry`] returns every module by name.

use drover_engine::module::Registry;

mod acct_common;
pub mod assert;
pub mod authorized_key;
pub mod blockinfile;
pub mod command;
pub mod copy;
pub mod cron;
pub mod debug;
pub mod fail;
pub mod file;
mod fs_attrs;
mod fs_content;
mod fs_copy;
mod fs_links;
mod fs_recurse;
pub mod group;
pub mod ini_file;
pub mod ipvs;
mod ipvs_table;
pub mod kernel;
pub mod lineinfile;
pub mod modprobe;
pub mod package;
pub mod pause;
pub mod service;
pub mod set_fact;
pub mod stat;
pub mod sysctl;
pub mod template;
pub mod user;

/// All built-in modules.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    file::register(&mut r);
    copy::register(&mut r);
    template::register(&mut r);
    lineinfile::register(&mut r);
    blockinfile::register(&mut r);
    ini_file::register(&mut r);
    command::register(&mut r);
    debug::register(&mut r);
    set_fact::register(&mut r);
    assert::register(&mut r);
    fail::register(&mut r);
    pause::register(&mut r);
    stat::register(&mut r);
    group::register(&mut r);
    user::register(&mut r);
    authorized_key::register(&mut r);
    cron::register(&mut r);
    package::register(&mut r);
    service::register(&mut r);
    sysctl::register(&mut r);
    modprobe::register(&mut r);
    kernel::register(&mut r);
    ipvs::register(&mut r);
    r
}
