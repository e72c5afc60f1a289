//! The one error type of ROOT reading: always names the file, and more where known.

use std::path::PathBuf;

/// Why an ntuple could not be read. Every variant names the file; the display form is the
/// message a user sees.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or is not a readable ROOT file (truncated, damaged header).
    #[error("{}: not a readable ROOT file: {reason}", file.display())]
    Open {
        /// The file.
        file: PathBuf,
        /// Why it could not be opened.
        reason: String,
    },
    /// None of the trees asked for is in the file.
    #[error("{}: no tree named {wanted} (keys in file: {found})", file.display())]
    NoTree {
        /// The file.
        file: PathBuf,
        /// The tree names asked for.
        wanted: String,
        /// The keys the file has (`none` when it has none).
        found: String,
    },
    /// The tree exists but its metadata could not be read.
    #[error("{}: tree '{tree}': {reason}", file.display())]
    Tree {
        /// The file.
        file: PathBuf,
        /// The tree's name.
        tree: String,
        /// Why its metadata could not be read.
        reason: String,
    },
    /// A branch the reader needs is not in the tree.
    #[error("{}: tree '{tree}' has no branch '{branch}'", file.display())]
    MissingBranch {
        /// The file.
        file: PathBuf,
        /// The tree's name.
        tree: String,
        /// The missing branch.
        branch: String,
    },
    /// A branch holds another type than the reader expects.
    #[error("{}: tree '{tree}', branch '{branch}': expected {expected}, file has {found}", file.display())]
    WrongType {
        /// The file.
        file: PathBuf,
        /// The tree's name.
        tree: String,
        /// The branch.
        branch: String,
        /// The type the reader expects.
        expected: String,
        /// The type the file has.
        found: String,
    },
    /// A basket could not be read or decoded (damaged or truncated data).
    #[error("{}: tree '{tree}', branch '{branch}': {reason}", file.display())]
    Data {
        /// The file.
        file: PathBuf,
        /// The tree's name.
        tree: String,
        /// The branch.
        branch: String,
        /// Why the basket could not be read or decoded.
        reason: String,
    },
    /// Two branches of one tree disagree (e.g. `photon_n` against the photon vectors).
    #[error("{}: tree '{tree}': {reason}", file.display())]
    Inconsistent {
        /// The file.
        file: PathBuf,
        /// The tree's name.
        tree: String,
        /// What disagrees.
        reason: String,
    },
}

/// Runs `f`, turning a panic inside the ROOT parser into an error. Only the last line of
/// defence: the read path returns errors itself, and a panic caught here is a bug to fix.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    // Silence the default hook for this call so a caught panic prints no message.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_GUARD.with(|g| g.get()) {
                default(info)
            }
        }));
    });
    IN_GUARD.with(|g| g.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_GUARD.with(|g| g.set(false));
    r.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(format!("internal parser failure on damaged input ({msg})"))
    })
}

thread_local! {
    static IN_GUARD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
