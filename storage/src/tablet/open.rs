//! Creating a tablet and opening one after a crash (recovery).
//!
//! Open, step by step (each step is safe to crash in; the next open redoes it):
//! 1. CURRENT → manifest → replay edits (a torn final edit is ignored).
//! 2. Open every SST the manifest names (checksummed footer, index, filter).
//! 3. List the directory: bump the file counter past every own file seen (an SST or WAL a
//!    crashed flush or roll left behind), and replay own WALs numbered >= the log number,
//!    in order, up to a torn tail.
//! 4. Flush what was replayed to level 0, create a fresh WAL, write a new manifest snapshot
//!    and switch CURRENT to it (its directory sync also makes the new WAL's name durable).
//! 5. Only then delete what is obsolete: older manifests, replayed WALs, own SSTs no version
//!    names. Inherited files are never deleted here.
//!
//! Must not: delete anything before the new CURRENT is durable, or touch other tablets' files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::layout::{file_name, parse_file_name, FileKind};
use super::schema_codec::{decode_schema, encode_schema};
use super::{Inner, MemSet, Tablet, TabletOptions, TabletStats, WalState};
use crate::error::{StorageError, StorageResult};
use crate::fs::{join, FileStore, FsError};
use crate::lsm::{build_tables, OutputSpec, TableFile, Version, LEVEL_COUNT};
use crate::manifest::store::{manifest_name, parse_manifest_name};
use crate::manifest::{recover, set_current, KeyRange, ManifestState, ManifestWriter, TabletId};
use crate::read::Schema;
use crate::wal::{replay_wal, GroupCommit, WalWriter};

impl Tablet {
    /// Create a new, empty tablet in `dir` (which must not hold one) and open it.
    pub fn create(
        fs: Arc<dyn FileStore>,
        dir: &str,
        id: TabletId,
        range: KeyRange,
        schema: Schema,
        opts: TabletOptions,
    ) -> StorageResult<Tablet> {
        schema.validate()?;
        if schema.families.is_empty() {
            return Err(StorageError::InvalidArgument(
                "a schema needs at least one family".into(),
            ));
        }
        if !range.end.is_empty() && range.end <= range.start {
            return Err(StorageError::InvalidArgument("empty key range".into()));
        }
        if crate::manifest::read_current(fs.as_ref(), dir)?.is_some() {
            return Err(StorageError::Fs(FsError::AlreadyExists(join(
                dir, "CURRENT",
            ))));
        }
        let state = ManifestState {
            tablet_id: id,
            range,
            schema: encode_schema(&schema),
            next_file_number: 2,
            log_number: 0,
            last_sequence: 0,
            files: BTreeMap::new(),
        };
        write_fresh_manifest(fs.as_ref(), dir, 1, &state)?;
        Tablet::open(fs, dir, opts)
    }

    /// Open the tablet in `dir`, recovering from whatever a crash left.
    pub fn open(fs: Arc<dyn FileStore>, dir: &str, opts: TabletOptions) -> StorageResult<Tablet> {
        let (mut state, old_manifest) = recover(fs.as_ref(), dir)?
            .ok_or_else(|| StorageError::Fs(FsError::NotFound(join(dir, "CURRENT"))))?;
        let schema = decode_schema(&state.schema, &join(dir, &manifest_name(old_manifest)))?;
        let lg_names: Vec<String> = schema.locality_groups().into_iter().collect();
        let family_lg: BTreeMap<Vec<u8>, usize> = schema
            .families
            .iter()
            .filter_map(|(f, r)| {
                lg_names
                    .iter()
                    .position(|n| *n == r.locality_group)
                    .map(|i| (f.clone(), i))
            })
            .collect();
        let id = state.tablet_id;
        let mut stats = TabletStats::default();

        let mut files = Vec::with_capacity(state.files.len());
        for meta in state.files.values() {
            if meta.lg as usize >= lg_names.len() {
                return Err(StorageError::corruption(
                    &meta.path,
                    "locality group not in the schema",
                ));
            }
            files.push(TableFile::open(
                fs.as_ref(),
                meta.clone(),
                opts.cache.clone(),
            )?);
        }
        let mut version = Version::from_files(lg_names.len(), files)?;

        // Own files on disk: bump the counter past them and find the WALs to replay.
        let names = fs.list(dir)?;
        let mut wals = Vec::new();
        for name in &names {
            if let Some((kind, writer, number)) = parse_file_name(name) {
                if writer == id {
                    state.next_file_number = state.next_file_number.max(number + 1);
                    if kind == FileKind::Wal && number >= state.log_number {
                        wals.push(number);
                    }
                }
            } else if let Some(n) = parse_manifest_name(name) {
                state.next_file_number = state.next_file_number.max(n + 1);
            }
        }
        wals.sort_unstable();
        let replay = MemSet::new(0, lg_names.len());
        let mut last_seq = state.last_sequence;
        for &n in &wals {
            let path = join(dir, &file_name(FileKind::Wal, id, n));
            let r = replay_wal(fs.as_ref(), &path)?;
            stats.replayed_wal_files += 1;
            stats.replayed_torn_tail_bytes += r.torn_tail_bytes;
            for (first_seq, batch) in r.batches {
                stats.replayed_batches += 1;
                for (i, m) in batch.iter().enumerate() {
                    let m = m?;
                    let seq = first_seq + i as u64;
                    last_seq = last_seq.max(seq);
                    let key = m.cell_key(seq).encode();
                    if m.family.is_empty() {
                        for mt in &replay.lgs {
                            mt.insert(&key, &[]);
                        }
                    } else {
                        let lg = *family_lg.get(m.family).ok_or_else(|| {
                            StorageError::corruption(&path, "mutation of an unknown family")
                        })?;
                        replay.lgs[lg].insert(&key, m.value);
                    }
                }
            }
        }
        state.last_sequence = last_seq;

        // Replayed data goes to level 0 so the old WALs can be retired.
        let mut next = state.next_file_number;
        if !replay.is_empty() {
            let mut added = Vec::new();
            for (lg, mt) in replay.lgs.iter().enumerate() {
                let spec = OutputSpec {
                    fs: fs.as_ref(),
                    tablet: id,
                    lg: lg as u32,
                    level: 0,
                    target_file_size_bytes: u64::MAX,
                    sst: opts.sst.clone(),
                    cache: opts.cache.clone(),
                };
                let mut it = mt.iter();
                it.seek_to_first()?;
                let mut new_path = || {
                    let n = next;
                    next += 1;
                    join(dir, &file_name(FileKind::Sst, id, n))
                };
                let out = build_tables(&spec, it.as_mut(), None, &mut new_path)?;
                stats.flushed_bytes += out.bytes_written;
                added.extend(out.files);
            }
            fs.sync_dir(dir)?;
            for f in &added {
                state.files.insert(f.meta.path.clone(), f.meta.clone());
            }
            version = version.apply(&[], added)?;
            stats.flushes += 1;
        }

        let wal_number = next;
        let manifest_number = next + 1;
        state.next_file_number = next + 2;
        state.log_number = wal_number;
        let wal_path = join(dir, &file_name(FileKind::Wal, id, wal_number));
        let wal = WalWriter::new(fs.create(&wal_path)?, wal_path, wal_number);
        let manifest = write_fresh_manifest(fs.as_ref(), dir, manifest_number, &state)?;

        // The new state is durable; what it no longer names can go.
        let live: BTreeSet<&str> = state.files.keys().map(|s| s.as_str()).collect();
        let mut deleted = 0;
        for name in &names {
            let obsolete = match parse_file_name(name) {
                Some((FileKind::Wal, w, n)) => w == id && n < wal_number,
                Some((FileKind::Sst, w, _)) => w == id && !live.contains(join(dir, name).as_str()),
                None => {
                    parse_manifest_name(name).is_some_and(|n| n != manifest_number)
                        || name == "CURRENT.tmp"
                }
            };
            if obsolete {
                fs.delete(&join(dir, name))?;
                deleted += 1;
            }
        }
        stats.files_deleted += deleted;
        if stats.replayed_batches > 0 || deleted > 0 {
            tracing::info!(
                dir,
                tablet = id.0,
                batches = stats.replayed_batches,
                deleted,
                "tablet recovered"
            );
        }

        let lg_count = lg_names.len();
        let inner = Inner {
            closed: false,
            poisoned: None,
            next_file_number: state.next_file_number,
            log_number: wal_number,
            last_sequence: state.last_sequence,
            visible_sequence: state.last_sequence,
            version: Arc::new(version),
            mem: MemSet::new(wal_number, lg_count),
            imm: Vec::new(),
            wal_numbers: [wal_number].into_iter().collect(),
            manifest,
            compact_pointers: vec![vec![Vec::new(); LEVEL_COUNT]; lg_count],
            stats,
        };
        Ok(Tablet {
            fs,
            dir: dir.to_string(),
            id,
            range: state.range.clone(),
            schema,
            lg_names,
            family_lg,
            group: GroupCommit::with_gather(
                opts.group_commit_bytes_max,
                std::time::Duration::from_micros(opts.group_commit_gather_micros),
            ),
            opts,
            compaction: Mutex::new(()),
            wal: Mutex::new(WalState {
                writer: Some(wal),
                failed: None,
                key_scratch: Vec::new(),
            }),
            inner: Mutex::new(inner),
        })
    }
}

/// Write `MANIFEST-<number>` with a snapshot of `state` and make it current.
pub(crate) fn write_fresh_manifest(
    fs: &dyn FileStore,
    dir: &str,
    number: u64,
    state: &ManifestState,
) -> StorageResult<ManifestWriter> {
    let w = ManifestWriter::create(fs, dir, number, state)?;
    set_current(fs, dir, number)?;
    Ok(w)
}
