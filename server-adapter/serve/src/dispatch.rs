//! One request run against the engine. Writes go through the engine's
//! `StateStore` (on the blocking pool: they wait for an fsync); reads,
//! which take microseconds from the engine's caches, run on the
//! connection's task, saving a thread hop each.

use mxstate_api::{Result, StateStore};
use mxstate_engine::EngineStore;
use mxstate_remote::wire::{self, Op, Reply};

use crate::adapter;

/// Whether `op` is answered on the connection's own task: the reads, which
/// take microseconds from the engine's caches. Writes wait for an fsync
/// and run on tasks of their own (a connection pipelines them).
pub fn inline(op: &Op) -> bool {
    match op {
        Op::StateForGroups { .. }
        | Op::GroupDelta(_)
        | Op::EventGroups(_)
        | Op::CurrentState { .. }
        | Op::RoomGroups(_) => true,
        Op::Adapter(a) => !a.writes(),
        Op::StoreGroups(_)
        | Op::SetEventGroups(_)
        | Op::SetCurrentState { .. }
        | Op::PurgeRoom(_)
        | Op::PurgeUnreferenced { .. }
        | Op::Stats
        // Auth questions walk graphs (milliseconds on big rooms) and may
        // load one from the store first.
        | Op::AddAuthEvents { .. }
        | Op::AuthChain { .. }
        | Op::AuthDifference { .. } => false,
    }
}

/// Runs `op` (not [`Op::Stats`], which the connection answers).
pub async fn run(store: &EngineStore, op: Op) -> Result<Reply> {
    Ok(match op {
        Op::StoreGroups(groups) => {
            let groups = groups.into_iter().map(wire::group_in).collect::<Result<Vec<_>>>()?;
            Reply::Ids(store.store_state_groups(groups).await?)
        }
        Op::StateForGroups { groups, filter } => {
            let states = store.engine().state_for_groups(&groups, &wire::filter_in(filter)?)?;
            Reply::States(wire::states_out(&states))
        }
        Op::GroupDelta(g) => Reply::Delta(
            store
                .engine()
                .state_group_delta(g)?
                .map(|d| (d.prev_group, wire::delta_out(&d.delta))),
        ),
        Op::SetEventGroups(pairs) => {
            let pairs = pairs
                .into_iter()
                .map(|(e, g)| Ok((mxstate_api::EventId::parse(e)?, g)))
                .collect::<Result<Vec<_>>>()?;
            store.set_state_groups_for_events(pairs).await?;
            Reply::Done
        }
        Op::EventGroups(events) => {
            let events = events
                .into_iter()
                .map(mxstate_api::EventId::parse)
                .collect::<Result<Vec<_>>>()?;
            let m = store.engine().event_groups(&events)?;
            Reply::EventGroups(m.into_iter().map(|(e, g)| (e.as_str().to_owned(), g)).collect())
        }
        Op::SetCurrentState { room, state } => {
            store
                .set_current_state(mxstate_api::RoomId::parse(room)?, wire::state_in(state)?)
                .await?;
            Reply::Done
        }
        Op::CurrentState { room, filter } => {
            let s = store
                .engine()
                .current_state(&mxstate_api::RoomId::parse(room)?, &wire::filter_in(filter)?)?;
            Reply::State(wire::state_out(&s))
        }
        Op::RoomGroups(room) => Reply::Ids(store.engine().room_groups(&mxstate_api::RoomId::parse(room)?)?),
        Op::PurgeRoom(room) => {
            store.purge_room(mxstate_api::RoomId::parse(room)?).await?;
            Reply::Done
        }
        Op::PurgeUnreferenced { room, groups } => {
            store
                .purge_unreferenced_groups(mxstate_api::RoomId::parse(room)?, groups)
                .await?;
            Reply::Done
        }
        Op::Adapter(op) if op.writes() => {
            let engine = store.engine().clone();
            Reply::Adapter(
                tokio::task::spawn_blocking(move || adapter::run(&engine, op))
                    .await
                    .map_err(|e| mxstate_api::Error::internal(format!("storage task failed: {e}")))??,
            )
        }
        Op::Adapter(op) => Reply::Adapter(adapter::run(store.engine(), op)?),
        Op::AddAuthEvents { room, events } => {
            let events = wire::auth_events_in(events)?;
            store.add_auth_events(mxstate_api::RoomId::parse(room)?, events).await?;
            Reply::Done
        }
        Op::AuthChain {
            room,
            events,
            include_given,
        } => {
            let events = wire::events_in(events)?.into_iter().collect();
            let chain = store
                .auth_chain(mxstate_api::RoomId::parse(room)?, events, include_given)
                .await?;
            Reply::Events(wire::events_out(&chain))
        }
        Op::AuthDifference { room, sets, conflicted } => {
            let sets = sets.into_iter().map(wire::events_in).collect::<Result<Vec<_>>>()?;
            let conflicted = match conflicted {
                Some((c, a)) => Some(mxstate_api::ConflictedSubgraph {
                    conflicted: wire::events_in(c)?,
                    additional_backwards_reachable: wire::events_in(a)?,
                }),
                None => None,
            };
            let d = store
                .auth_chain_difference(mxstate_api::RoomId::parse(room)?, sets, conflicted)
                .await?;
            Reply::AuthDifference {
                difference: wire::events_out(&d.auth_difference),
                subgraph: d.conflicted_subgraph.as_ref().map(wire::events_out),
            }
        }
        Op::Stats => return Err(mxstate_api::Error::internal("stats is answered by the connection")),
    })
}
