//! One request run against the engine. Reads are first tried on the
//! connection's task from the engine's caches alone (microseconds, no
//! thread hop); a read that needs the store (a cold group, the event
//! index, a scan) and every write run on tokio's blocking pool, so that
//! no runtime thread waits on the disk or an fsync.

use mxstate_api::{Result, StateStore};
use mxstate_engine::{Engine, EngineStore};
use mxstate_remote::wire::{self, Op, Reply};

use crate::adapter;

/// Whether `op` is a read: tried on the connection's own task from the
/// caches first ([`read_cached`]). Writes wait for an fsync and run on
/// tasks of their own (a connection pipelines them).
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

/// The answer to the read `op` (one that [`inline`] accepts) from the
/// engine's caches alone, on this thread; `None` when it needs the store
/// (or fails: [`run`] then gives the answer or the error from the blocking
/// pool).
pub fn read_cached(store: &EngineStore, op: &Op) -> Option<Reply> {
    store.engine().without_waiting(|e| read(e, op.clone()))
}

/// Runs the read `op` (one that [`inline`] accepts) on `engine`,
/// blocking: the caller decides where.
fn read(engine: &Engine, op: Op) -> Result<Reply> {
    Ok(match op {
        Op::StateForGroups { groups, filter } => {
            let states = engine.state_for_groups(&groups, &wire::filter_in(filter)?)?;
            Reply::States(wire::states_out(&states))
        }
        Op::GroupDelta(g) => Reply::Delta(
            engine
                .state_group_delta(g)?
                .map(|d| (d.prev_group, wire::delta_out(&d.delta))),
        ),
        Op::EventGroups(events) => {
            let events = events
                .into_iter()
                .map(mxstate_api::EventId::parse)
                .collect::<Result<Vec<_>>>()?;
            let m = engine.event_groups(&events)?;
            Reply::EventGroups(m.into_iter().map(|(e, g)| (e.as_str().to_owned(), g)).collect())
        }
        Op::CurrentState { room, filter } => {
            let s = engine.current_state(&mxstate_api::RoomId::parse(room)?, &wire::filter_in(filter)?)?;
            Reply::State(wire::state_out(&s))
        }
        Op::RoomGroups(room) => Reply::Ids(engine.room_groups(&mxstate_api::RoomId::parse(room)?)?),
        Op::Adapter(op) if !op.writes() => Reply::Adapter(adapter::run(engine, op)?),
        _ => return Err(mxstate_api::Error::internal("a write reached the service's read path")),
    })
}

/// Runs `op` on the engine's blocking pool.
async fn blocking<T: Send + 'static>(
    store: &EngineStore,
    f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
) -> Result<T> {
    let engine = store.engine().clone();
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|e| mxstate_api::Error::internal(format!("storage task failed: {e}")))?
}

/// Runs `op` (not [`Op::Stats`], which the connection answers).
pub async fn run(store: &EngineStore, op: Op) -> Result<Reply> {
    Ok(match op {
        op @ (Op::StateForGroups { .. }
        | Op::GroupDelta(_)
        | Op::EventGroups(_)
        | Op::CurrentState { .. }
        | Op::RoomGroups(_)) => blocking(store, move |e| read(e, op)).await?,
        Op::StoreGroups(groups) => {
            let groups = groups.into_iter().map(wire::group_in).collect::<Result<Vec<_>>>()?;
            Reply::Ids(store.store_state_groups(groups).await?)
        }
        Op::SetEventGroups(pairs) => {
            let pairs = pairs
                .into_iter()
                .map(|(e, g)| Ok((mxstate_api::EventId::parse(e)?, g)))
                .collect::<Result<Vec<_>>>()?;
            store.set_state_groups_for_events(pairs).await?;
            Reply::Done
        }
        Op::SetCurrentState { room, state } => {
            store
                .set_current_state(mxstate_api::RoomId::parse(room)?, wire::state_in(state)?)
                .await?;
            Reply::Done
        }
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
        Op::Adapter(op) => Reply::Adapter(blocking(store, move |e| adapter::run(e, op)).await?),
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
