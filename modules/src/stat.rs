//! `stat` module (being written).

use drover_engine::module::Registry;

pub fn register(_r: &mut Registry) {}
