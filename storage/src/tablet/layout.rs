//! On-disk layout of a tablet directory, and file naming.
//!
//! ```text
//! <dir>/CURRENT                    names the live manifest ("MANIFEST-000007\n")
//! <dir>/MANIFEST-<n>               version edits (see manifest/)
//! <dir>/<tablet>-<n>.wal           write-ahead log, one per memtable generation
//! <dir>/<tablet>-<n>.sst           SST written by this tablet
//! ```
//! `<tablet>` is the decimal id of the tablet that wrote the file, zero-padded to 10 digits;
//! `<n>` is that tablet's file number (zero-padded to 8), unique within the tablet. A split
//! child's manifest records the *full path* of each file, so files it inherits stay in the
//! parent's directory under the parent's id: `inherited = writer id != my id`. A tablet deletes
//! only files with its own id; shared files are collected by the master.
//!
//! Must not: do I/O.

use crate::manifest::TabletId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Sst,
    Wal,
}

pub fn file_name(kind: FileKind, writer: TabletId, number: u64) -> String {
    let ext = match kind {
        FileKind::Sst => "sst",
        FileKind::Wal => "wal",
    };
    format!("{:010}-{:08}.{ext}", writer.0, number)
}

/// `(kind, writer, number)` of a data file name, or `None` for anything else.
pub fn parse_file_name(name: &str) -> Option<(FileKind, TabletId, u64)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let kind = match ext {
        "sst" => FileKind::Sst,
        "wal" => FileKind::Wal,
        _ => return None,
    };
    let (id, number) = stem.split_once('-')?;
    if id.is_empty()
        || number.is_empty()
        || !id.bytes().chain(number.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((kind, TabletId(id.parse().ok()?), number.parse().ok()?))
}

/// The tablet id encoded in an SST path (any directory).
pub fn writer_of_path(path: &str) -> Option<TabletId> {
    let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    parse_file_name(name).map(|(_, id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_number() {
        let a = file_name(FileKind::Sst, TabletId(42), 7);
        assert_eq!(a, "0000000042-00000007.sst");
        assert_eq!(parse_file_name(&a), Some((FileKind::Sst, TabletId(42), 7)));
        assert_eq!(writer_of_path(&format!("t/42/{a}")), Some(TabletId(42)));
        assert!(
            file_name(FileKind::Wal, TabletId(1), 9) < file_name(FileKind::Wal, TabletId(1), 10)
        );
        for bad in [
            "CURRENT",
            "MANIFEST-000001",
            "x-1.sst",
            "1-.wal",
            "1-2.tmp",
            "-1.sst",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }
}
