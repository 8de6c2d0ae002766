//! The small files calico-node writes for `calicoctl` to read (the Docker Engine it serves, the
//! IPIP notice): each replaced whole, so a reader never sees half a file.

use std::path::Path;

/// Writes `text` to `path` through a temporary file beside it and a rename.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
