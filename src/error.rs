//! The library's error type. Every variant names the file, field or text position at fault and
//! what was expected there.

use std::path::PathBuf;

/// Errors of the darts-pt engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An op name that is not one of the reference's op names.
    #[error("unknown op `{name}`; expected one of: {expected}")]
    UnknownOp {
        /// The name given.
        name: String,
        /// The names that would have been accepted.
        expected: String,
    },
    /// A malformed DARTS genotype or NAS-Bench-201 architecture string.
    #[error("malformed {what} at character {position}: expected {expected}, found {found}")]
    Parse {
        /// `"DARTS genotype"` or `"NAS-Bench-201 architecture string"`.
        what: &'static str,
        /// 0-based character offset into the text.
        position: usize,
        /// What the parser expected there.
        expected: String,
        /// What it found (quoted text or "end of text").
        found: String,
    },
    /// A structurally valid genotype that does not fit the space or the rules of a cell.
    #[error("invalid genotype: {0}")]
    Genotype(String),
    /// A bad setting.
    #[error("invalid setting `{field}`: {message}")]
    Config {
        /// The setting (CLI flag or config key) at fault.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The requested compute device could not be initialised.
    #[error("device `{device}` is not available: {message}")]
    Device {
        /// The device asked for (`cpu`, `wgpu`).
        device: String,
        /// Why, and what to do about it.
        message: String,
    },
    /// A dataset file that is missing, truncated or not in the expected format.
    #[error("{path}: {message}")]
    Data {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A checkpoint whose content does not fit the supernet.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Every problem found (missing, mis-shaped and unexpected tensors).
        message: String,
    },
    /// Training produced a NaN or infinite loss.
    #[error("non-finite loss at epoch {epoch}, step {step}: {message}")]
    NonFinite {
        /// Epoch (0-based).
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// Details and where the last good checkpoint is.
        message: String,
    },
    /// Another process is writing the run directory (it holds its lock).
    #[error(
        "{path} is in use by {holder}; wait for it to finish, stop it, or choose another run directory"
    )]
    InUse {
        /// The run directory.
        path: PathBuf,
        /// Who holds it, as its lock file says (process id and command).
        holder: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A figure could not be drawn (`figures`; the drawing library's message).
    #[error("cannot draw the figure: {0}")]
    Figure(String),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
