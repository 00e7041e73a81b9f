//! Validation of paths inside a repository tree.

use crate::Error;

/// Split a repository path (`envs/prod/app.yaml`) into its components, refusing
/// anything that could escape the tree or touch Git's own data: absolute paths, `.` and
/// `..`, `.git` (in any case), empty components, backslashes and NUL bytes.
///
/// With `allow_root`, the empty path (and `/`-only trailing forms like `envs/`) are
/// accepted and name the root (or that directory); files always need a name.
pub(crate) fn components(path: &str, allow_root: bool) -> Result<Vec<&str>, Error> {
    let bad = |why: &str| {
        Error::invalid_input(format!(
            "invalid repository path {path:?}: {why}; use a relative path like \"envs/prod/app.yaml\""
        ))
    };
    if path.starts_with('/') {
        return Err(bad("absolute paths are not allowed"));
    }
    if path.contains('\\') {
        return Err(bad("backslashes are not allowed, use '/'"));
    }
    if path.contains('\0') {
        return Err(bad("NUL bytes are not allowed"));
    }
    let trimmed = if allow_root {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    if trimmed.is_empty() {
        return if allow_root {
            Ok(Vec::new())
        } else {
            Err(bad("the path is empty"))
        };
    }
    let mut out = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" => return Err(bad("empty path component (a doubled or trailing '/')")),
            "." | ".." => return Err(bad("'.' and '..' components are not allowed")),
            p if p.eq_ignore_ascii_case(".git") => {
                return Err(bad("'.git' components are not allowed"));
            }
            p => out.push(p),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::components;

    #[test]
    fn accepts_plain_paths() {
        assert_eq!(components("a/b.yaml", false).unwrap(), vec!["a", "b.yaml"]);
        assert_eq!(components("", true).unwrap(), Vec::<&str>::new());
        assert_eq!(components("envs/", true).unwrap(), vec!["envs"]);
        assert_eq!(components(".gitignore", false).unwrap(), vec![".gitignore"]);
    }

    #[test]
    fn rejects_escapes() {
        for p in [
            "/etc/passwd",
            "a/../b",
            "..",
            "./a",
            ".git/config",
            "a/.GIT/x",
            "a//b",
            "a/",
            "",
            "a\\b",
        ] {
            assert!(components(p, false).is_err(), "{p} should be rejected");
        }
    }
}
