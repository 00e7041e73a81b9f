//! A direct edit of a Git index file (`.git/index`, versions 2 and 3) for a handful of
//! paths: the file is locked the way Git locks it (`index.lock`, created exclusively),
//! read, the changed entries replaced, removed or inserted in path order, and written back
//! with a fresh SHA-1 trailer. Nothing is parsed beyond the entry boundaries and nothing
//! else is hashed, which makes it several times cheaper than a full read and write
//! through libgit2 on a large index.
//!
//! The cache tree (`TREE`) is kept, with the folders along every changed path marked
//! invalid, as Git does when it updates entries. The other optional extensions
//! (untracked cache, fsmonitor, offset tables, resolve undo) describe entries that are
//! about to change, so they are dropped; Git rebuilds them when it needs them. Anything this does not handle (index version 4, a required
//! extension such as a split index or a sparse index, a SHA-256 repository, a file
//! replacing a folder that still has entries) answers `None`, and the caller takes the
//! general path through libgit2.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use git2::Oid;

/// One new stage-0 entry.
pub(crate) struct NewEntry {
    pub(crate) id: Oid,
    pub(crate) mode: u32,
    pub(crate) meta: std::fs::Metadata,
}

/// A held `index.lock`; removed on drop unless committed.
pub(crate) struct IndexLock {
    lock: PathBuf,
    index: PathBuf,
    file: Option<File>,
}

impl IndexLock {
    /// Take the lock, as Git does: fails when another process holds it.
    pub(crate) fn acquire(git_dir: &Path) -> std::io::Result<Self> {
        let lock = git_dir.join("index.lock");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)?;
        Ok(Self {
            lock,
            index: git_dir.join("index"),
            file: Some(file),
        })
    }

    /// Write `bytes` as the new index and release the lock.
    pub(crate) fn commit(mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.write_all(bytes)?;
        }
        std::fs::rename(&self.lock, &self.index)?;
        self.lock = PathBuf::new();
        Ok(())
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        self.file = None;
        if !self.lock.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.lock);
        }
    }
}

const SIGNATURE: &[u8; 4] = b"DIRC";
const HASH: usize = 20;
const EXTENDED: u16 = 0x4000;
const NAME_MASK: u16 = 0x0FFF;

/// An index file split at entry boundaries.
pub(crate) struct RawIndex {
    bytes: Vec<u8>,
    version: u32,
    /// (path start, path end, entry start, entry end, stage) per entry, in file order.
    entries: Vec<(usize, usize, usize, usize, u16)>,
    /// Where the cache tree extension's data is, if there is one.
    tree: Option<(usize, usize)>,
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

impl RawIndex {
    /// Read the index (`None` when missing: an empty index) and split it; `None` for a
    /// form this does not handle.
    pub(crate) fn read(git_dir: &Path) -> std::io::Result<Option<Self>> {
        let bytes = match std::fs::read(git_dir.join("index")) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some(Self {
                    bytes: Vec::new(),
                    version: 2,
                    entries: Vec::new(),
                    tree: None,
                }));
            }
            Err(e) => return Err(e),
        };
        Ok(Self::parse(bytes))
    }

    fn parse(bytes: Vec<u8>) -> Option<Self> {
        if bytes.len() < 12 + HASH || &bytes[..4] != SIGNATURE {
            return None;
        }
        let version = be32(&bytes, 4)?;
        if version != 2 && version != 3 {
            return None;
        }
        let count = usize::try_from(be32(&bytes, 8)?).ok()?;
        let end = bytes.len() - HASH;
        let mut entries = Vec::with_capacity(count);
        let mut at = 12;
        for _ in 0..count {
            let flags = be16(&bytes, at + 60)?;
            let header = if version >= 3 && flags & EXTENDED != 0 {
                64
            } else {
                62
            };
            let name_start = at + header;
            let name_len = if flags & NAME_MASK < NAME_MASK {
                usize::from(flags & NAME_MASK)
            } else {
                bytes.get(name_start..end)?.iter().position(|b| *b == 0)?
            };
            let len = (header + name_len + 8) & !7;
            if at + len > end || bytes.get(name_start + name_len) != Some(&0) {
                return None;
            }
            entries.push((
                name_start,
                name_start + name_len,
                at,
                at + len,
                (flags >> 12) & 3,
            ));
            at += len;
        }
        // Extensions: optional ones (upper-case first letter) are dropped on write; a
        // required one (split index `link`, sparse index `sdir`, ...) cannot be.
        let mut tree = None;
        while at + 8 <= end {
            let sig = bytes.get(at..at + 4)?;
            if !sig[0].is_ascii_uppercase() {
                return None;
            }
            let size = usize::try_from(be32(&bytes, at + 4)?).ok()?;
            if sig == b"TREE" {
                tree = Some((at + 8, at.checked_add(8 + size)?));
            }
            at = at.checked_add(8 + size)?;
        }
        if at != end {
            return None;
        }
        Some(Self {
            bytes,
            version,
            entries,
            tree,
        })
    }

    fn path(&self, i: usize) -> &[u8] {
        let (s, e, ..) = self.entries[i];
        &self.bytes[s..e]
    }

    /// The blob id staged at stage 0 for `path`, if any.
    pub(crate) fn staged(&self, path: &[u8]) -> Option<Oid> {
        let i = self
            .entries
            .partition_point(|&(s, e, ..)| &self.bytes[s..e] < path);
        (i..self.entries.len())
            .take_while(|&j| self.path(j) == path)
            .find(|&j| self.entries[j].4 == 0)
            .and_then(|j| {
                let (.., start, _, _) = self.entries[j];
                Oid::from_bytes(&self.bytes[start + 40..start + 60]).ok()
            })
    }

    /// The new index with `edits` applied (`None`: remove the path), or `None` when a
    /// new file would collide with a folder's entries (or the reverse).
    pub(crate) fn edited(&self, edits: &BTreeMap<Vec<u8>, Option<NewEntry>>) -> Option<Vec<u8>> {
        let mut records: Vec<(&[u8], std::borrow::Cow<'_, [u8]>)> =
            Vec::with_capacity(self.entries.len() + edits.len());
        for (i, &(_, _, start, end, _)) in self.entries.iter().enumerate() {
            if !edits.contains_key(self.path(i)) {
                records.push((
                    self.path(i),
                    std::borrow::Cow::Borrowed(&self.bytes[start..end]),
                ));
            }
        }
        for (path, entry) in edits {
            if let Some(entry) = entry {
                records.push((path, std::borrow::Cow::Owned(encode(path, entry))));
            }
        }
        // Mostly sorted already: a stable sort finds the runs. Stages of one path keep
        // their file order.
        records.sort_by(|a, b| a.0.cmp(b.0));
        let sorted: Vec<&[u8]> = records.iter().map(|r| r.0).collect();
        for (path, entry) in edits {
            if entry.is_some() && collides(&sorted, path) {
                return None;
            }
        }
        let mut out = Vec::with_capacity(self.bytes.len() + edits.len() * 128);
        out.extend_from_slice(SIGNATURE);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&u32::try_from(records.len()).ok()?.to_be_bytes());
        for (_, record) in &records {
            out.extend_from_slice(record);
        }
        let cache_tree = self
            .tree
            .and_then(|(start, end)| CacheTree::parse(&self.bytes[start..end]));
        if let Some(mut tree) = cache_tree {
            for path in edits.keys() {
                tree.invalidate(path);
            }
            let mut data = Vec::new();
            tree.write(&mut data);
            out.extend_from_slice(b"TREE");
            out.extend_from_slice(&u32::try_from(data.len()).ok()?.to_be_bytes());
            out.extend_from_slice(&data);
        }
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &out);
        out.extend_from_slice(digest.as_ref());
        Some(out)
    }
}

/// The cache tree extension: per folder, how many entries it covers and its tree id,
/// or `-1` when invalid.
struct CacheTree {
    name: Vec<u8>,
    entries: i64,
    id: Option<[u8; HASH]>,
    children: Vec<CacheTree>,
}

impl CacheTree {
    fn parse(data: &[u8]) -> Option<Self> {
        let mut at = 0;
        let tree = Self::parse_at(data, &mut at, 0)?;
        (at == data.len()).then_some(tree)
    }

    fn parse_at(data: &[u8], at: &mut usize, depth: usize) -> Option<Self> {
        if depth > 4096 {
            return None;
        }
        let rest = data.get(*at..)?;
        let nul = rest.iter().position(|b| *b == 0)?;
        let name = rest[..nul].to_vec();
        let rest = &rest[nul + 1..];
        let space = rest.iter().position(|b| *b == b' ')?;
        let newline = rest.iter().position(|b| *b == b'\n')?;
        let entries: i64 = std::str::from_utf8(rest.get(..space)?).ok()?.parse().ok()?;
        let subtrees: usize = std::str::from_utf8(rest.get(space + 1..newline)?)
            .ok()?
            .parse()
            .ok()?;
        *at += nul + 1 + newline + 1;
        let id = if entries >= 0 {
            let id: [u8; HASH] = data.get(*at..*at + HASH)?.try_into().ok()?;
            *at += HASH;
            Some(id)
        } else {
            None
        };
        let mut children = Vec::with_capacity(subtrees.min(1024));
        for _ in 0..subtrees {
            children.push(Self::parse_at(data, at, depth + 1)?);
        }
        Some(Self {
            name,
            entries,
            id,
            children,
        })
    }

    /// Mark this folder and every folder on the way to `path` invalid.
    fn invalidate(&mut self, path: &[u8]) {
        self.entries = -1;
        self.id = None;
        if let Some(slash) = path.iter().position(|b| *b == b'/') {
            let (dir, rest) = (&path[..slash], &path[slash + 1..]);
            if let Some(child) = self.children.iter_mut().find(|c| c.name == dir) {
                child.invalidate(rest);
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name);
        out.push(0);
        out.extend_from_slice(format!("{} {}\n", self.entries, self.children.len()).as_bytes());
        if let Some(id) = &self.id {
            out.extend_from_slice(id);
        }
        for child in &self.children {
            child.write(out);
        }
    }
}

/// Whether `path` as a file conflicts with another entry: one of its parent folders is
/// a file entry, or entries live under it as a folder.
fn collides(sorted: &[&[u8]], path: &[u8]) -> bool {
    let has = |p: &[u8]| sorted.binary_search(&p).is_ok();
    for (i, b) in path.iter().enumerate() {
        if *b == b'/' && has(&path[..i]) {
            return true;
        }
    }
    let mut dir = path.to_vec();
    dir.push(b'/');
    let i = sorted.partition_point(|p| *p < dir.as_slice());
    sorted.get(i).is_some_and(|p| p.starts_with(&dir))
}

/// One version-2 entry (stage 0, no extended flags).
fn encode(path: &[u8], entry: &NewEntry) -> Vec<u8> {
    let len = (62 + path.len() + 8) & !7;
    let mut out = Vec::with_capacity(len);
    for v in stat_fields(entry) {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(entry.id.as_bytes());
    let name_len = u16::try_from(path.len()).map_or(NAME_MASK, |n| n.min(NAME_MASK));
    out.extend_from_slice(&name_len.to_be_bytes());
    out.extend_from_slice(path);
    out.resize(len, 0);
    out
}

/// ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size: 32 bits each, truncated as
/// Git truncates them.
fn stat_fields(entry: &NewEntry) -> [u32; 10] {
    let low = |v: u64| u32::try_from(v & 0xFFFF_FFFF).unwrap_or(0);
    let size = low(entry.meta.len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = &entry.meta;
        let secs = |v: i64| low(u64::try_from(v).unwrap_or(0));
        [
            secs(m.ctime()),
            secs(m.ctime_nsec()),
            secs(m.mtime()),
            secs(m.mtime_nsec()),
            low(m.dev()),
            low(m.ino()),
            entry.mode,
            m.uid(),
            m.gid(),
            size,
        ]
    }
    #[cfg(not(unix))]
    {
        [0, 0, 0, 0, 0, 0, entry.mode, 0, 0, size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_between_files_and_folders() {
        let sorted: Vec<&[u8]> = vec![b"a", b"b/c", b"b0", b"d/e/f"];
        assert!(collides(&sorted, b"a/x"));
        assert!(collides(&sorted, b"b"));
        assert!(collides(&sorted, b"d/e"));
        assert!(!collides(&sorted, b"b1"));
        assert!(!collides(&sorted, b"d/e2"));
    }

    #[test]
    fn cache_tree_round_trips_and_invalidates_along_a_path() {
        let mut data = Vec::new();
        data.extend_from_slice(b"\x003 2\n");
        data.extend_from_slice(&[1; HASH]);
        data.extend_from_slice(b"a\x002 0\n");
        data.extend_from_slice(&[2; HASH]);
        data.extend_from_slice(b"b\x00-1 1\n");
        data.extend_from_slice(b"c\x001 0\n");
        data.extend_from_slice(&[3; HASH]);
        let mut tree = CacheTree::parse(&data).unwrap();
        let mut again = Vec::new();
        tree.write(&mut again);
        assert_eq!(again, data);
        tree.invalidate(b"b/c/file.txt");
        assert_eq!(tree.entries, -1);
        assert_eq!(tree.children[0].entries, 2, "a/ is untouched");
        assert_eq!(tree.children[1].children[0].entries, -1);
        assert!(tree.children[1].children[0].id.is_none());
        assert!(CacheTree::parse(b"\x003 2\n").is_none(), "truncated");
    }

    #[test]
    fn garbage_is_not_an_index() {
        assert!(RawIndex::parse(b"not an index at all, sorry".to_vec()).is_none());
        let mut v3 = b"DIRC\0\0\0\x04\0\0\0\0".to_vec();
        v3.extend_from_slice(&[0; 20]);
        assert!(
            RawIndex::parse(v3).is_none(),
            "version 4 is left to libgit2"
        );
    }
}
