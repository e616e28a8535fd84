//! Garbage collection of shared files (seed 000) and the file-store jobs the master runs.
//!
//! Split and merge share files: a child reads its parent's files until compactions rewrite
//! them, and only the master sees every tablet's report. The unit of collection is a dead
//! tablet folder (`<tables_root>/<table>/t<id>` whose tablet is gone from meta and from every
//! procedure). It is deleted only when
//! 1. no tablet of its table reports (in any report) an inherited file under it,
//! 2. every tablet of the table is Ready, unlocked and reported by a round that started after
//!    its last change (a Loading, Splitting, Merging or unreported tablet may still inherit),
//! 3. it has looked unused for `gc_grace_ms`.
//!
//! Folders are found by listing the file store (a job), so nothing is forgotten across a
//! master failover. Nodes delete their own tablet-private garbage.
//! Owns: [`GcState`], the list/delete jobs and the tree helpers the drop procedure uses.
//! Must not: delete anything under a live tablet's folder or a table not Enabled.

use super::procedures::Event;
use super::{Master, MasterJobOutput};
use crate::kernel::{Ctx, JobError, JobId, JobSpec, Time};
use crate::meta::{ProcedureId, TableStatus, TabletId, TabletStatus};
use shale_storage::fs::{join, FileStore, FsError};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{debug, info, warn};

/// What a running job is for.
#[derive(Clone, Debug)]
pub enum JobWhat {
    List { tablet_next: u64 },
    Delete(String),
    Proc(ProcedureId),
}

#[derive(Clone, Debug, Default)]
pub struct Candidate {
    pub table: String,
    pub id: u64,
    /// When it was first seen unused (reset whenever a report uses it).
    pub unused_since: Option<Time>,
}

#[derive(Clone, Debug, Default)]
pub struct GcState {
    pub candidates: BTreeMap<String, Candidate>,
    pub jobs: BTreeMap<JobId, JobWhat>,
    /// Folders deleted in this master's life (for operators and tests).
    pub deleted: Vec<String>,
}

impl GcState {
    fn listing(&self) -> bool {
        self.jobs
            .values()
            .any(|j| matches!(j, JobWhat::List { .. }))
    }
    fn deleting(&self, dir: &str) -> bool {
        self.jobs
            .values()
            .any(|j| matches!(j, JobWhat::Delete(d) if d == dir))
    }
}

impl Master {
    fn tablet_live(&self, id: TabletId) -> bool {
        self.st.tablets.contains_key(&id)
            || self.procs.values().any(|p| p.body.tablets().contains(&id))
    }

    /// After each round: list folders now and then, and delete the ones that qualify.
    pub(crate) fn gc_round(&mut self, ctx: &mut Ctx<'_, Self>) {
        let every = self.cfg.gc_list_every_rounds.max(1);
        if !self.gc.listing() && (self.query.completed % every == 1 || every == 1) {
            let fs = self.fs.clone();
            let root = self.cfg.tables_root.clone();
            let id = ctx.start_job(
                JobSpec::new("master.gc.list", Duration::from_millis(5)),
                move || MasterJobOutput::GcListed(list_tablet_dirs(fs.as_ref(), &root)),
            );
            let tablet_next = self.st.next_tablet;
            self.gc.jobs.insert(id, JobWhat::List { tablet_next });
        }
        let now = ctx.now();
        let grace = Duration::from_millis(self.cfg.gc_grace_ms);
        let mut started = 0;
        let dirs: Vec<String> = self.gc.candidates.keys().cloned().collect();
        for dir in dirs {
            let Some(c) = self.gc.candidates.get(&dir).cloned() else {
                continue;
            };
            if self.tablet_live(TabletId(c.id)) {
                self.gc.candidates.remove(&dir);
                continue;
            }
            if self.st.table_status(&c.table) != Some(TableStatus::Enabled) {
                ctx.mark("master.gc.skip_table");
                continue;
            }
            let prefix = format!("{dir}/");
            let tablets: Vec<_> = self.st.tablets_of(&c.table).collect();
            #[cfg(feature = "planted-bugs")]
            let tablets: Vec<_> = match self.cfg.planted.gc_ignores_loading {
                true => tablets
                    .into_iter()
                    .filter(|t| t.rec.status != TabletStatus::Loading)
                    .collect(),
                false => tablets,
            };
            let in_use = tablets.iter().any(|t| {
                t.reported
                    .as_ref()
                    .is_some_and(|r| r.inherited_files.iter().any(|f| f.starts_with(&prefix)))
            });
            if in_use {
                ctx.mark("master.gc.in_use");
                if let Some(c) = self.gc.candidates.get_mut(&dir) {
                    c.unused_since = None;
                }
                continue;
            }
            let busy = tablets.iter().any(|t| {
                t.lock.is_some()
                    || matches!(
                        t.rec.status,
                        TabletStatus::Loading | TabletStatus::Splitting | TabletStatus::Merging
                    )
            });
            if busy {
                ctx.mark("master.gc.skip_loading");
                continue;
            }
            let unreported = tablets
                .iter()
                .any(|t| t.rec.status != TabletStatus::Ready || t.fresh_report().is_none());
            if unreported {
                ctx.mark("master.gc.skip_unreported");
                continue;
            }
            let since = match self.gc.candidates.get_mut(&dir) {
                Some(c) => *c.unused_since.get_or_insert(now),
                None => continue,
            };
            if now.since(since) < grace {
                ctx.mark("master.gc.in_grace");
                continue;
            }
            if started >= self.cfg.gc_deletes_per_round_max || self.gc.deleting(&dir) {
                continue;
            }
            started += 1;
            ctx.mark("master.gc.delete");
            info!(%dir, "deleting a dead tablet folder");
            let fs = self.fs.clone();
            let d = dir.clone();
            let id = ctx.start_job(
                JobSpec::new("master.gc.delete", Duration::from_millis(5)),
                move || MasterJobOutput::GcDeleted {
                    result: delete_tree(fs.as_ref(), &d),
                    dir: d,
                },
            );
            self.gc.jobs.insert(id, JobWhat::Delete(dir));
        }
    }

    pub(crate) fn on_job(
        &mut self,
        id: JobId,
        result: Result<MasterJobOutput, JobError>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let Some(what) = self.gc.jobs.remove(&id) else {
            debug!(?id, "result of a job from an earlier life ignored");
            return;
        };
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                warn!(?what, %e, "master job failed");
                if let JobWhat::Proc(p) = what {
                    self.proc_event(p, Event::Job(Err(e.to_string())), ctx);
                }
                return;
            }
        };
        match (what, out) {
            (JobWhat::List { tablet_next }, MasterJobOutput::GcListed(Ok(dirs))) => {
                for (table, name) in dirs {
                    let Some(id) = name.strip_prefix('t').and_then(|s| s.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    // Ids at or above the mark may belong to a procedure started after the
                    // listing began; they are judged by a later listing.
                    if id >= tablet_next || self.tablet_live(TabletId(id)) {
                        continue;
                    }
                    let dir = join(&join(&self.cfg.tables_root, &table), &name);
                    self.gc.candidates.entry(dir).or_insert(Candidate {
                        table,
                        id,
                        unused_since: None,
                    });
                }
            }
            (JobWhat::Delete(dir), MasterJobOutput::GcDeleted { result, .. }) => match result {
                Ok(n) => {
                    ctx.mark("master.gc.deleted");
                    info!(%dir, files = n, "dead tablet folder deleted");
                    self.gc.candidates.remove(&dir);
                    self.gc.deleted.push(dir);
                }
                Err(e) => warn!(%dir, %e, "deleting a dead folder failed; retried next round"),
            },
            (
                JobWhat::Proc(p),
                MasterJobOutput::TrashMoved { result, .. }
                | MasterJobOutput::TrashDeleted { result, .. },
            ) => self.proc_event(p, Event::Job(result), ctx),
            (what, out) => warn!(?what, ?out, "job answered with an unexpected output"),
        }
    }
}

/// Every (table, folder) under `root`.
pub fn list_tablet_dirs(fs: &dyn FileStore, root: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for table in fs.list(root).map_err(|e| e.to_string())? {
        for dir in fs.list(&join(root, &table)).map_err(|e| e.to_string())? {
            out.push((table.clone(), dir));
        }
    }
    Ok(out)
}

/// Every file below `dir` (an entry that lists as non-empty is a folder).
fn files_below(fs: &dyn FileStore, dir: &str, out: &mut Vec<String>) -> Result<(), String> {
    for name in fs.list(dir).map_err(|e| e.to_string())? {
        let path = join(dir, &name);
        match fs.list(&path) {
            Ok(sub) if !sub.is_empty() => files_below(fs, &path, out)?,
            _ => out.push(path),
        }
    }
    Ok(())
}

/// Delete everything below `dir`. Idempotent: what is already gone counts as deleted.
pub fn delete_tree(fs: &dyn FileStore, dir: &str) -> Result<u64, String> {
    let mut files = Vec::new();
    files_below(fs, dir, &mut files)?;
    let mut n = 0;
    for f in files {
        match fs.delete(&f) {
            Ok(()) | Err(FsError::NotFound(_)) => n += 1,
            // An empty folder on a real disk is not a file; leaving it costs nothing.
            Err(_) if fs.list(&f).is_ok_and(|v| v.is_empty()) && !fs.exists(&f) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let _ = fs.sync_dir(dir);
    Ok(n)
}

/// Move everything below `from` to the same place below `to`. Idempotent.
pub fn move_tree(fs: &dyn FileStore, from: &str, to: &str) -> Result<u64, String> {
    let mut files = Vec::new();
    files_below(fs, from, &mut files)?;
    let mut n = 0;
    for f in files {
        let rel = f.strip_prefix(from).unwrap_or(&f).trim_start_matches('/');
        match fs.rename(&f, &join(to, rel)) {
            Ok(()) | Err(FsError::NotFound(_)) => n += 1,
            Err(e) => return Err(e.to_string()),
        }
    }
    let _ = fs.sync_dir(to);
    Ok(n)
}
