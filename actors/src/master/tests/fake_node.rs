//! The scripted tablet nodes of the master tests: simple responders that keep a map of served
//! tablets, answer Load/Unload/Split/Query per the control contract, and can be told to fail
//! the next command of a kind, to stop answering, or to die (stop heartbeating too).
//!
//! Must not: model storage beyond what the master can observe (a first file per created
//! tablet, inherited file lists for GC).

use crate::kernel::{Epoch, NodeId};
use crate::meta::TabletId;
use crate::proto::control::*;
use crate::proto::ClusterMsg;
use shale_storage::fs::FileStore;
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cmd {
    Load,
    Unload,
    Split,
    Query,
}

#[derive(Default)]
pub struct FakeNode {
    pub epoch: Epoch,
    pub alive: bool,
    /// Answers nothing (but heartbeats) while set.
    pub mute: bool,
    /// Query reports are kept in `held` instead of sent while set (released by the test).
    pub hold_reports: bool,
    pub held: Vec<(NodeId, ClusterMsg)>,
    pub served: BTreeMap<TabletId, u64>,
    pub fail_next: BTreeMap<Cmd, VecDeque<ControlError>>,
    pub sizes: BTreeMap<TabletId, u64>,
    pub inherited: BTreeMap<TabletId, Vec<String>>,
    pub loads: Vec<(TabletId, LoadMode)>,
    pub paths: BTreeMap<TabletId, String>,
    pub max_term: u64,
}

pub(super) fn fake_answer(
    node: &mut FakeNode,
    req: &ControlRequest,
    fs: &dyn FileStore,
) -> Result<ControlReply, ControlError> {
    if req.term < node.max_term {
        return Err(ControlError::StaleTerm {
            asked: req.term,
            seen: node.max_term,
        });
    }
    node.max_term = req.term;
    if req.node_epoch != node.epoch {
        return Err(ControlError::StaleEpoch {
            asked: req.node_epoch,
            current: node.epoch,
        });
    }
    let kind = match &req.cmd {
        ControlCmd::Load { .. } => Cmd::Load,
        ControlCmd::Unload { .. } => Cmd::Unload,
        ControlCmd::Split { .. } => Cmd::Split,
        ControlCmd::Query { .. } => Cmd::Query,
    };
    if let Some(e) = node.fail_next.get_mut(&kind).and_then(|q| q.pop_front()) {
        return Err(e);
    }
    match &req.cmd {
        ControlCmd::Load { tablet, mode } => {
            node.loads.push((tablet.id, mode.clone()));
            if *mode == LoadMode::Create {
                // The tablet's first file, so GC and drop have something real to move.
                let path = format!("{}/000001.sst", tablet.path);
                if let Ok(mut f) = fs.create(&path) {
                    let _ = f.append(b"sst");
                    let _ = f.sync();
                }
            }
            node.served.insert(tablet.id, tablet.version);
            node.paths.insert(tablet.id, tablet.path.clone());
            let size = node.sizes.get(&tablet.id).copied().unwrap_or(1);
            Ok(ControlReply::Loaded {
                tablet: tablet.id,
                version: tablet.version,
                size_bytes: size,
            })
        }
        ControlCmd::Unload { tablet, .. } => {
            node.served.remove(tablet);
            Ok(ControlReply::Unloaded { tablet: *tablet })
        }
        ControlCmd::Split {
            tablet,
            key,
            left,
            right,
            ..
        } => {
            if node.served.remove(tablet).is_none() {
                return Err(ControlError::NotServing { tablet: *tablet });
            }
            let key = key.clone().unwrap_or_else(|| b"m".to_vec());
            let size = node.sizes.get(tablet).copied().unwrap_or(2);
            let parent_files: Vec<String> = node.inherited.get(tablet).cloned().unwrap_or_default();
            for child in [left.0, right.0] {
                let mut files = parent_files.clone();
                if let Some(p) = node.paths.get(tablet) {
                    files.push(format!("{p}/000001.sst"));
                }
                node.inherited.insert(child, files);
                node.sizes.insert(child, size / 2);
            }
            Ok(ControlReply::Split {
                tablet: *tablet,
                key,
                left_size_bytes: size / 2,
                right_size_bytes: size / 2,
            })
        }
        ControlCmd::Query { round } => Ok(ControlReply::Report(NodeReport {
            round: *round,
            epoch: node.epoch,
            tablets: node
                .served
                .iter()
                .map(|(id, v)| TabletReport {
                    id: *id,
                    version: *v,
                    state: ServedState::Serving,
                    size_bytes: node.sizes.get(id).copied().unwrap_or(1),
                    read_rate: Rate::new(0.0),
                    write_rate: Rate::new(0.0),
                    scan_rate: Rate::new(0.0),
                    inherited_files: node.inherited.get(id).cloned().unwrap_or_default(),
                    split_key: Some(b"m".to_vec()),
                })
                .collect(),
        })),
    }
}
