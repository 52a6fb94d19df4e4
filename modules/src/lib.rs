//! drover's modules. Each module lives in its own file, starts with a `//!`
//! paragraph saying what it owns, and only observes and plans: the engine
//! applies. [`registry`] returns every module by name.

use drover_engine::module::Registry;

mod acct_common;
pub mod archive;
pub mod assert;
pub mod authorized_key;
pub mod blockinfile;
pub mod command;
pub mod copy;
pub mod cron;
pub mod debug;
pub mod fail;
pub mod fetch;
pub mod file;
pub mod firewall;
mod fs_attrs;
mod fs_content;
mod fs_copy;
mod fs_links;
mod fs_recurse;
mod fw_ipt;
mod fw_nft;
mod fw_persist;
pub mod galera_status;
pub mod get_url;
pub mod group;
pub mod ini_file;
pub mod ipvs;
mod ipvs_table;
pub mod kernel;
pub mod known_hosts;
pub mod lineinfile;
pub mod modprobe;
pub mod mount;
pub mod mysql_db;
mod mysql_priv;
pub mod mysql_query;
pub mod mysql_table;
pub mod mysql_user;
pub mod mysql_variables;
mod observed;
pub mod package;
pub mod pause;
pub mod reboot;
pub mod service;
pub mod set_fact;
pub mod slurp;
mod sql_common;
pub mod stat;
pub mod synchronize;
mod sys_common;
pub mod sysctl;
pub mod template;
#[cfg(test)]
mod test_ctx;
pub mod unarchive;
pub mod uri;
pub mod user;
pub mod wait_for;
mod zk_client;
pub mod zk_ensemble;
pub mod zk_node;

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
    archive::register(&mut r);
    fetch::register(&mut r);
    get_url::register(&mut r);
    known_hosts::register(&mut r);
    mount::register(&mut r);
    slurp::register(&mut r);
    unarchive::register(&mut r);
    uri::register(&mut r);
    wait_for::register(&mut r);
    firewall::register(&mut r);
    synchronize::register(&mut r);
    mysql_db::register(&mut r);
    mysql_user::register(&mut r);
    mysql_query::register(&mut r);
    mysql_table::register(&mut r);
    mysql_variables::register(&mut r);
    galera_status::register(&mut r);
    zk_node::register(&mut r);
    zk_ensemble::register(&mut r);
    sysctl::register(&mut r);
    modprobe::register(&mut r);
    kernel::register(&mut r);
    reboot::register(&mut r);
    ipvs::register(&mut r);
    r
}
