//! Which file a request may read: only regular files inside the runs folder. The path arrives
//! percent-decoded; any `..`, `.`, empty, absolute or backslash component is refused before the
//! file system is asked, and a symlink that leads outside the folder is caught by comparing the
//! canonical path with the folder's.

use std::path::{Component, Path, PathBuf};

/// Why a file request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not there (or not a regular file).
    NotFound,
    /// The path leaves the runs folder, or is not a plain relative path.
    Outside,
}

/// The file at `rel` (as decoded from the URL) inside `root` (canonical).
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf, Refused> {
    if rel.is_empty() || rel.contains('\\') || rel.contains('\0') {
        return Err(Refused::Outside);
    }
    let rel_path = Path::new(rel);
    for c in rel_path.components() {
        match c {
            Component::Normal(_) => {}
            _ => return Err(Refused::Outside),
        }
    }
    // `components` quietly drops `.` and doubled separators; refuse them too.
    if rel.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(Refused::Outside);
    }
    let full = root.join(rel_path).canonicalize().map_err(|_| Refused::NotFound)?;
    if !full.starts_with(root) {
        return Err(Refused::Outside);
    }
    if !full.is_file() {
        return Err(Refused::NotFound);
    }
    Ok(full)
}

/// The type a browser needs for the files a run holds.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("jsonl") => "application/jsonl",
        Some("toml" | "txt" | "md" | "log") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_inside_the_folder_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("runs");
        std::fs::create_dir_all(root.join("a/samples")).unwrap();
        std::fs::write(root.join("a/samples/step-1.png"), b"png").unwrap();
        std::fs::write(tmp.path().join("secret"), b"key").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("a/link")).unwrap();
        std::os::unix::fs::symlink(root.join("a/samples/step-1.png"), root.join("a/inside")).unwrap();
        let root = root.canonicalize().unwrap();

        assert_eq!(resolve(&root, "a/samples/step-1.png").unwrap(), root.join("a/samples/step-1.png"));
        assert!(resolve(&root, "a/inside").is_ok(), "a link within the folder is fine");
        for bad in ["../secret", "a/../../secret", "a/./samples/step-1.png", "/etc/passwd", "a//samples/step-1.png", "a\\..\\x", "a/link", ""] {
            assert_eq!(resolve(&root, bad), Err(Refused::Outside), "{bad}");
        }
        assert_eq!(resolve(&root, "a/samples"), Err(Refused::NotFound), "a folder is not a file");
        assert_eq!(resolve(&root, "a/none.png"), Err(Refused::NotFound));
    }
}
