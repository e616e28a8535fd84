//! Admin calls (seed 000): validate again (a client may be buggy), write meta with bounded
//! retries, answer, and only then act on tablets. Reads answer from memory.
//!
//! Owns: the admin call handlers and schema/key validation, and the checks that start a
//! split, merge or move (shared with the balancer).
//! Must not: change memory before meta committed, or answer success before it did.

use super::io::TxnOwner;
use super::procedures::{
    DropPhase, DropProc, MergePhase, MergeProc, MovePhase, MoveProc, ProcBody, Procedure,
    SplitPhase, SplitProc, TablePhase, TableProc,
};
use super::{Master, Phase};
use crate::kernel::{Ctx, NodeId};
use crate::meta::{
    NodeStatus, Op, ProcedureId, Schema, TableRecord, TableStatus, TabletId, TabletRecord,
    TabletStatus,
};
use crate::proto::admin::{
    AdminCall, AdminError, AdminReply, AdminRequest, ClusterStatus, NodeInfo, TableInfo, TabletInfo,
};
use crate::proto::limits::{self, InputError};
use crate::proto::RequestId;

/// Tablets one CreateTable may make: they are written in one transaction, so that a table
/// never exists in meta with part of its key space uncovered.
pub const CREATE_TABLETS_MAX: usize = 250;

/// Check a schema: at least one family, valid unique names, sane version bounds.
pub fn check_schema(schema: &Schema) -> Result<(), InputError> {
    if schema.families.is_empty() {
        return Err(InputError::Invalid(
            "a table needs at least one family".into(),
        ));
    }
    limits::check_count(
        "families",
        schema.families.len(),
        limits::FAMILIES_PER_TABLE_MAX,
    )?;
    let mut names: Vec<&str> = Vec::new();
    for f in &schema.families {
        limits::check_name("family", &f.name)?;
        if !f.locality_group.is_empty() {
            limits::check_name("locality group", &f.locality_group)?;
        }
        if f.max_versions == 0 || f.min_versions > f.max_versions {
            return Err(InputError::Invalid(format!(
                "family {:?}: need 0 <= min_versions <= max_versions and max_versions >= 1",
                f.name
            )));
        }
        if names.contains(&f.name.as_str()) {
            return Err(InputError::Invalid(format!("family {:?} repeated", f.name)));
        }
        names.push(&f.name);
    }
    Ok(())
}

/// Check pre-split keys: valid rows, strictly increasing, within the per-create bound.
pub fn check_split_keys(keys: &[Vec<u8>]) -> Result<(), InputError> {
    limits::check_count("split keys", keys.len(), limits::PRESPLIT_KEYS_MAX)?;
    limits::check_count("tablets", keys.len() + 1, CREATE_TABLETS_MAX)?;
    for k in keys {
        limits::check_row(k)?;
    }
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(InputError::Invalid(
            "split keys must be strictly increasing".into(),
        ));
    }
    Ok(())
}

impl Master {
    pub(crate) fn on_admin(&mut self, from: NodeId, req: AdminRequest, ctx: &mut Ctx<'_, Self>) {
        if self.phase != Phase::Leading || !self.holds_lease(ctx.now()) {
            self.admin_reply(from, req.id, Err(AdminError::NotMaster), ctx);
            return;
        }
        let id = req.id;
        // The network may deliver a request twice; the client never reuses a request id, so a
        // later copy of a mutating call is dropped unanswered (the first copy's answer is on
        // its way). Applied twice, a create would answer `TableExists` to the caller whose
        // table it created. Remembered in memory only: a new master starts afresh.
        let max = self.cfg.admin_requests_remembered;
        if req.call.is_mutation() && !self.admin_seen.first_sight(from, id, max) {
            ctx.mark("master.admin.duplicate_dropped");
            return;
        }
        let result = self.admin_call(from, id, req.call, ctx);
        // `None`: the answer comes when the meta write commits (or fails).
        if let Some(result) = result {
            self.admin_reply(from, id, result, ctx);
        }
    }

    fn admin_call(
        &mut self,
        from: NodeId,
        id: RequestId,
        call: AdminCall,
        ctx: &mut Ctx<'_, Self>,
    ) -> Option<Result<AdminReply, AdminError>> {
        let write =
            |m: &mut Self, ops: Vec<Op>, start: Option<Procedure>, ctx: &mut Ctx<'_, Self>| {
                let owner = TxnOwner::Admin {
                    client: from,
                    req: id,
                    reply: AdminReply::Done,
                    start: start.map(Box::new),
                };
                m.txn(owner, ops, ctx);
                None
            };
        match call {
            AdminCall::CreateTable {
                name,
                schema,
                split_keys,
            } => match self.create_ops(&name, schema, &split_keys, ctx) {
                Ok((ops, p)) => write(self, ops, Some(p), ctx),
                Err(e) => Some(Err(e)),
            },
            AdminCall::DisableTable { name } => {
                match self.table_change(&name, TableStatus::Enabled, "disable needs Enabled") {
                    Ok(mut rec) => {
                        rec.status = TableStatus::Disabled;
                        let p = self.table_proc(
                            ProcBody::Disable(TableProc {
                                table: name,
                                phase: TablePhase::Waiting,
                            }),
                            ctx,
                        );
                        let ops = vec![Op::PutTable(rec), Op::PutProcedure(p.record())];
                        write(self, ops, Some(p), ctx)
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            AdminCall::EnableTable { name } => {
                match self.table_change(&name, TableStatus::Disabled, "enable needs Disabled") {
                    Ok(mut rec) => {
                        rec.status = TableStatus::Enabled;
                        let p = self.table_proc(
                            ProcBody::Enable(TableProc {
                                table: name,
                                phase: TablePhase::Waiting,
                            }),
                            ctx,
                        );
                        let ops = vec![Op::PutTable(rec), Op::PutProcedure(p.record())];
                        write(self, ops, Some(p), ctx)
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            AdminCall::DropTable { name } => {
                match self.table_change(&name, TableStatus::Disabled, "drop needs Disabled") {
                    Ok(mut rec) => {
                        let unfinished = self
                            .st
                            .tablets_of(&name)
                            .any(|t| t.lock.is_some() || t.rec.status != TabletStatus::Disabled);
                        if unfinished {
                            return Some(Err(AdminError::WrongTableStatus {
                                name,
                                status: rec.status,
                                why: "the disable is still unloading tablets".into(),
                            }));
                        }
                        rec.status = TableStatus::Dropping;
                        let pid = self.st.alloc_proc();
                        let trash = format!("{}/{}.{}", self.cfg.trash_root, name, pid.0);
                        let body = ProcBody::Drop(DropProc {
                            table: name,
                            trash,
                            delete_after: None,
                            phase: DropPhase::Trashing,
                        });
                        let p = Procedure::new(pid, body, ctx.now());
                        let ops = vec![Op::PutTable(rec), Op::PutProcedure(p.record())];
                        write(self, ops, Some(p), ctx)
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            AdminCall::AlterTable { name, schema } => {
                if let Err(e) = check_schema(&schema) {
                    return Some(Err(e.into()));
                }
                match self.st.tables.get(&name) {
                    Some(t) if t.rec.status != TableStatus::Dropping => {
                        let mut rec = t.rec.clone();
                        rec.schema = schema;
                        write(self, vec![Op::PutTable(rec)], None, ctx)
                    }
                    Some(t) => Some(Err(AdminError::WrongTableStatus {
                        name,
                        status: t.rec.status,
                        why: "the table is being dropped".into(),
                    })),
                    None => Some(Err(AdminError::NoSuchTable(name))),
                }
            }
            AdminCall::ListTables => Some(Ok(AdminReply::Tables(
                self.st
                    .tables
                    .keys()
                    .filter_map(|n| self.table_info(n))
                    .collect(),
            ))),
            AdminCall::DescribeTable { name } => Some(match self.table_info(&name) {
                Some(table) => Ok(AdminReply::Table {
                    table,
                    tablets: self
                        .st
                        .tablets_of(&name)
                        .map(|t| tablet_info(&t.rec))
                        .collect(),
                }),
                None => Err(AdminError::NoSuchTable(name)),
            }),
            AdminCall::ListTablets { table } => Some(Ok(AdminReply::Tablets(
                self.st
                    .tablets
                    .values()
                    .filter(|t| table.as_ref().is_none_or(|n| &t.rec.table == n))
                    .map(|t| tablet_info(&t.rec))
                    .collect(),
            ))),
            AdminCall::ListNodes => Some(Ok(AdminReply::Nodes(self.node_infos()))),
            AdminCall::Status => Some(Ok(AdminReply::Status(self.status(ctx)))),
            AdminCall::SplitTablet { tablet, key } => Some(
                self.start_split(tablet, key, ctx)
                    .map(|p| AdminReply::Started { procedure: p.0 }),
            ),
            AdminCall::MergeTablets { a, b } => Some(
                self.start_merge(a, b, ctx)
                    .map(|p| AdminReply::Started { procedure: p.0 }),
            ),
            AdminCall::MoveTablet { tablet, node } => Some(
                self.start_move(tablet, node, ctx)
                    .map(|p| AdminReply::Started { procedure: p.0 }),
            ),
        }
    }

    fn create_ops(
        &mut self,
        name: &str,
        schema: Schema,
        split_keys: &[Vec<u8>],
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<(Vec<Op>, Procedure), AdminError> {
        limits::check_name("table", name)?;
        check_schema(&schema)?;
        check_split_keys(split_keys)?;
        if self.st.tables.contains_key(name) {
            return Err(AdminError::TableExists(name.to_string()));
        }
        let mut ops = vec![Op::PutTable(TableRecord {
            name: name.to_string(),
            schema,
            status: TableStatus::Enabled,
            created_at: ctx.now(),
        })];
        let mut bounds: Vec<Vec<u8>> = vec![Vec::new()];
        bounds.extend(split_keys.iter().cloned());
        bounds.push(Vec::new());
        for w in bounds.windows(2) {
            let id = self.st.alloc_tablet();
            ops.push(Op::PutTablet(TabletRecord {
                id,
                table: name.to_string(),
                start: w[0].clone(),
                end: w[1].clone(),
                path: self.cfg.tablet_path(name, id),
                assigned: None,
                status: TabletStatus::Offline,
                size_bytes: 0,
                version: 1,
                parents: Vec::new(),
            }));
        }
        let p = self.table_proc(
            ProcBody::Create(TableProc {
                table: name.to_string(),
                phase: TablePhase::Waiting,
            }),
            ctx,
        );
        ops.push(Op::PutProcedure(p.record()));
        Ok((ops, p))
    }

    fn table_proc(&mut self, body: ProcBody, ctx: &mut Ctx<'_, Self>) -> Procedure {
        Procedure::new(self.st.alloc_proc(), body, ctx.now())
    }

    /// The table's record if it has status `need` and no table procedure is running on it.
    fn table_change(
        &self,
        name: &str,
        need: TableStatus,
        why: &str,
    ) -> Result<TableRecord, AdminError> {
        let t = self
            .st
            .tables
            .get(name)
            .ok_or_else(|| AdminError::NoSuchTable(name.to_string()))?;
        let busy = self
            .procs
            .values()
            .any(|p| p.body.table() == Some(name) && !matches!(p.body, ProcBody::Create(_)));
        if t.rec.status != need || busy {
            return Err(AdminError::WrongTableStatus {
                name: name.to_string(),
                status: t.rec.status,
                why: if busy {
                    "another table procedure is running".into()
                } else {
                    why.into()
                },
            });
        }
        Ok(t.rec.clone())
    }

    /// After a DDL write committed: start its procedure.
    pub(crate) fn after_ddl(&mut self, start: Option<Box<Procedure>>, ctx: &mut Ctx<'_, Self>) {
        if let Some(p) = start {
            let id = p.id;
            self.procs.insert(id, *p);
            self.proc_event(id, super::procedures::Event::Resume, ctx);
        }
        self.assign_pass(ctx);
    }

    fn table_info(&self, name: &str) -> Option<TableInfo> {
        let t = self.st.tables.get(name)?;
        Some(TableInfo {
            name: name.to_string(),
            schema: t.rec.schema.clone(),
            status: t.rec.status,
            tablets: u32::try_from(self.st.tablets_of(name).count()).unwrap_or(u32::MAX),
        })
    }

    fn node_infos(&self) -> Vec<NodeInfo> {
        self.st
            .nodes
            .values()
            .map(|n| NodeInfo {
                id: n.rec.id,
                name: n.rec.name.clone(),
                addr: n.rec.addr.clone(),
                status: n.rec.status,
                epoch: n.rec.epoch,
                tablets: u32::try_from(self.st.tablets_on(n.rec.id)).unwrap_or(u32::MAX),
                size_bytes: n.size_bytes,
            })
            .collect()
    }

    fn status(&self, ctx: &Ctx<'_, Self>) -> ClusterStatus {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ClusterStatus {
            master: ctx.me(),
            term: self.term(),
            nodes_up: count(
                self.st
                    .nodes
                    .values()
                    .filter(|n| n.rec.status == NodeStatus::Up)
                    .count(),
            ),
            nodes_down: count(
                self.st
                    .nodes
                    .values()
                    .filter(|n| n.rec.status != NodeStatus::Up)
                    .count(),
            ),
            tables: count(self.st.tables.len()),
            tablets: count(self.st.tablets.len()),
            tablets_ready: count(
                self.st
                    .tablets
                    .values()
                    .filter(|t| t.rec.status == TabletStatus::Ready)
                    .count(),
            ),
            procedures_running: count(self.procs.len()),
        }
    }

    /// A Ready, unlocked, assigned tablet.
    fn ready_tablet(&self, id: TabletId) -> Result<TabletRecord, AdminError> {
        let t = self
            .st
            .tablets
            .get(&id)
            .ok_or(AdminError::NoSuchTablet(id))?;
        if t.lock.is_some() {
            return Err(AdminError::TabletBusy(id));
        }
        if t.rec.status != TabletStatus::Ready || t.rec.assigned.is_none() {
            return Err(AdminError::TabletBusy(id));
        }
        Ok(t.rec.clone())
    }

    pub(crate) fn start_split(
        &mut self,
        id: TabletId,
        key: Option<Vec<u8>>,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<ProcedureId, AdminError> {
        let rec = self.ready_tablet(id)?;
        if let Some(k) = &key {
            limits::check_row(k)?;
            let inside = k.as_slice() > rec.start.as_slice()
                && (rec.end.is_empty() || k.as_slice() < rec.end.as_slice());
            if !inside {
                return Err(
                    InputError::Invalid("split key outside the tablet's range".into()).into(),
                );
            }
        }
        let at = rec.assigned.ok_or(AdminError::TabletBusy(id))?;
        let (left, right) = (self.st.alloc_tablet(), self.st.alloc_tablet());
        let body = ProcBody::Split(SplitProc {
            tablet: id,
            at,
            key,
            left,
            right,
            phase: SplitPhase::Marking,
        });
        self.start_procedure(body, ctx)
            .ok_or(AdminError::TabletBusy(id))
    }

    pub(crate) fn start_merge(
        &mut self,
        a: TabletId,
        b: TabletId,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<ProcedureId, AdminError> {
        let (ra, rb) = (self.ready_tablet(a)?, self.ready_tablet(b)?);
        let (l, r) = if !ra.end.is_empty() && ra.end == rb.start {
            (ra, rb)
        } else if !rb.end.is_empty() && rb.end == ra.start {
            (rb, ra)
        } else {
            return Err(AdminError::NotMergeable(
                "the tablets are not adjacent".into(),
            ));
        };
        if l.table != r.table || a == b {
            return Err(AdminError::NotMergeable(
                "not two tablets of one table".into(),
            ));
        }
        let (Some(la), Some(ra)) = (l.assigned, r.assigned) else {
            return Err(AdminError::NotMergeable("a tablet is not assigned".into()));
        };
        let size = |id: TabletId| {
            self.st.tablets.get(&id).map_or(0, |t| {
                t.reported
                    .as_ref()
                    .map_or(t.rec.size_bytes, |x| x.size_bytes)
            })
        };
        let dest = if size(l.id) >= size(r.id) {
            la.node
        } else {
            ra.node
        };
        let merged = self.st.alloc_tablet();
        let body = ProcBody::Merge(MergeProc {
            left: l.id,
            right: r.id,
            left_at: la,
            right_at: ra,
            left_path: l.path.clone(),
            right_path: r.path.clone(),
            merged,
            merged_path: self.cfg.tablet_path(&l.table, merged),
            dest,
            left_unloaded: None,
            right_unloaded: None,
            load_at: None,
            phase: MergePhase::Marking,
        });
        self.start_procedure(body, ctx)
            .ok_or(AdminError::TabletBusy(a))
    }

    pub(crate) fn start_move(
        &mut self,
        id: TabletId,
        node: NodeId,
        ctx: &mut Ctx<'_, Self>,
    ) -> Result<ProcedureId, AdminError> {
        let to = self
            .node_live(node, ctx.now())
            .ok_or(AdminError::NoSuchNode(node))?;
        let rec = self.ready_tablet(id)?;
        let from = rec.assigned.ok_or(AdminError::TabletBusy(id))?;
        if from.node == node {
            return Err(AdminError::TabletBusy(id));
        }
        let body = ProcBody::Move(MoveProc {
            tablet: id,
            from,
            to,
            phase: MovePhase::Marking,
        });
        self.start_procedure(body, ctx)
            .ok_or(AdminError::TabletBusy(id))
    }
}

fn tablet_info(r: &TabletRecord) -> TabletInfo {
    TabletInfo {
        id: r.id,
        table: r.table.clone(),
        start: r.start.clone(),
        end: r.end.clone(),
        status: r.status,
        node: r.assigned.map(|a| a.node),
        size_bytes: r.size_bytes,
        version: r.version,
    }
}
