//! What `state`, `stats` and `verify` read: a database directory, or a
//! running `mxstate serve` (so an admin can inspect a live deployment
//! without stopping it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use mxstate_api::{EventId, GroupId, RoomId, StateFilter, StateMap, StateStore};
use mxstate_engine::Engine;
use mxstate_remote::auth::Secret;
use mxstate_remote::{Addr, RemoteOptions, RemoteStore};
use mxstate_synapse_import::GroupStates;

use crate::cli::TargetArgs;
use crate::error::{CliError, CliResult};

/// An open database, or a client of a service.
pub enum Target {
    Local {
        engine: Box<Engine>,
        path: PathBuf,
    },
    Remote {
        rt: tokio::runtime::Runtime,
        store: RemoteStore,
    },
}

impl Target {
    /// Opens what the arguments name (a database must exist).
    pub fn open(a: &TargetArgs) -> CliResult<Target> {
        match (&a.db, &a.server) {
            (Some(path), None) => Ok(Target::Local {
                engine: Box::new(super::open_existing(path)?),
                path: path.clone(),
            }),
            (None, Some(server)) => {
                let secret = a.secret_file.as_deref().map(read_secret).transpose()?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| CliError::io("tokio runtime", e))?;
                let opts = RemoteOptions {
                    secret,
                    connections: 1,
                    ..RemoteOptions::default()
                };
                let store = rt.block_on(RemoteStore::connect(Addr::parse(server)?, opts))?;
                Ok(Target::Remote { rt, store })
            }
            _ => Err(CliError::Usage("give --db DIR or --server ADDR".into())),
        }
    }

    /// Closes the database or the connection, at the end of a command
    /// ([`Engine::close_at_exit`]).
    pub fn close(self) {
        match self {
            Target::Local { engine, .. } => engine.close_at_exit(),
            Target::Remote { .. } => {}
        }
    }

    /// The engine, when the database is open in this process.
    pub fn engine(&self) -> Option<&Engine> {
        match self {
            Target::Local { engine, .. } => Some(engine),
            Target::Remote { .. } => None,
        }
    }

    /// Where to put scratch files: next to the database, or the system's
    /// temporary directory for a service.
    pub fn scratch_parent(&self) -> PathBuf {
        match self {
            Target::Local { path, .. } => super::import::scratch_parent(path),
            Target::Remote { .. } => std::env::temp_dir(),
        }
    }

    /// States of groups under a filter.
    pub fn state_for_groups(&self, groups: &[GroupId], filter: &StateFilter) -> CliResult<BTreeMap<GroupId, StateMap>> {
        Ok(match self {
            Target::Local { engine, .. } => engine.state_for_groups(groups, filter)?,
            Target::Remote { rt, store } => rt.block_on(store.state_for_groups(groups.to_vec(), filter.clone()))?,
        })
    }

    /// The groups of events; unknown events are left out.
    pub fn event_groups(&self, events: &[EventId]) -> CliResult<BTreeMap<EventId, GroupId>> {
        Ok(match self {
            Target::Local { engine, .. } => engine.event_groups(events)?,
            Target::Remote { rt, store } => rt.block_on(store.state_groups_for_events(events.to_vec()))?,
        })
    }

    /// The service's figures (JSON), for a remote target.
    pub fn service_stats(&self) -> CliResult<Option<String>> {
        match self {
            Target::Local { .. } => Ok(None),
            Target::Remote { rt, store } => Ok(Some(rt.block_on(store.stats())?)),
        }
    }
}

impl GroupStates for Target {
    fn group_state(&self, group: GroupId) -> mxstate_api::Result<StateMap> {
        match self {
            Target::Local { engine, .. } => engine.group_state(group),
            Target::Remote { rt, store } => {
                let mut m = rt.block_on(store.state_for_groups(vec![group], StateFilter::all()))?;
                m.remove(&group).ok_or(mxstate_api::Error::UnknownGroup(group))
            }
        }
    }

    fn auth_chain(&self, room: &RoomId, events: &[EventId]) -> mxstate_api::Result<BTreeSet<EventId>> {
        match self {
            Target::Local { engine, .. } => engine.auth_chain(room, events, false),
            Target::Remote { rt, store } => rt.block_on(store.auth_chain(room.clone(), events.to_vec(), false)),
        }
    }

    fn auth_chain_difference(
        &self,
        room: &RoomId,
        state_sets: &[BTreeSet<EventId>],
    ) -> mxstate_api::Result<BTreeSet<EventId>> {
        let answer = match self {
            Target::Local { engine, .. } => engine.auth_chain_difference(room, state_sets, None)?,
            Target::Remote { rt, store } => {
                rt.block_on(store.auth_chain_difference(room.clone(), state_sets.to_vec(), None))?
            }
        };
        Ok(answer.auth_difference)
    }
}

/// The shared secret in file `f` (16 bytes or more, whitespace around it
/// ignored).
pub fn read_secret(f: &std::path::Path) -> CliResult<Secret> {
    let bytes = std::fs::read(f).map_err(|e| CliError::io(f.display().to_string(), e))?;
    Secret::new(&bytes).ok_or_else(|| CliError::Usage(format!("{}: a secret must be at least 16 bytes", f.display())))
}
