//! Reading one probe's result out of a plan's observations, by index, for
//! every module: a result of the wrong kind (an engine bug or a probe list
//! out of step with the plan) is a probe error naming what was expected.

use drover_engine::module::{ExecOutput, FileStat, ModuleError, Observed};

/// A stat observation at `i`.
pub fn stat_at(obs: &[Observed], i: usize) -> Result<Option<&FileStat>, ModuleError> {
    match obs.get(i) {
        Some(Observed::Stat(s)) => Ok(s.as_ref()),
        other => Err(ModuleError::Probe(format!(
            "expected a stat at {i}, got {other:?}"
        ))),
    }
}

/// A content observation at `i`.
pub fn content_at(obs: &[Observed], i: usize) -> Result<Option<&[u8]>, ModuleError> {
    match obs.get(i) {
        Some(Observed::Content(c)) => Ok(c.as_deref()),
        other => Err(ModuleError::Probe(format!(
            "expected file content at {i}, got {other:?}"
        ))),
    }
}

/// The exec result at `i`, naming `what` when it is not one.
pub fn exec_at<'a>(
    obs: &'a [Observed],
    i: usize,
    what: &str,
) -> Result<&'a ExecOutput, ModuleError> {
    match obs.get(i) {
        Some(Observed::Exec(o)) => Ok(o),
        other => Err(ModuleError::Probe(format!(
            "expected the output of {what}, got {other:?}"
        ))),
    }
}
