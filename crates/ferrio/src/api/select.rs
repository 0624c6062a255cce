//! Which sockets a request is about: rooms, socket ids and user ids, minus excepted rooms.

use std::sync::Arc;

use ferrio_socketio::{BroadcastOperator, Namespace};

use super::body::Fields;
use super::error::ApiError;
use crate::gateway::claims::user_room;

/// A choice of sockets of one namespace: those in any of `rooms`, with an id in `sockets` or a
/// user id in `users`, minus those in any of `except`. Nothing chosen means every socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Room names.
    pub(crate) rooms: Vec<String>,
    /// Socket ids (each socket is in a room named after its id).
    pub(crate) sockets: Vec<String>,
    /// User ids: the `sub` of their tokens (each user's sockets are in room `user:<sub>`).
    pub(crate) users: Vec<String>,
    /// Rooms whose sockets are left out.
    pub(crate) except: Vec<String>,
}

impl Selection {
    /// Reads `rooms`, `sockets`, `users` and `except` from `fields`.
    pub(crate) fn read(fields: &mut Fields) -> Result<Self, ApiError> {
        Ok(Self {
            rooms: fields.names("rooms")?,
            sockets: fields.names("sockets")?,
            users: fields.names("users")?,
            except: fields.names("except")?,
        })
    }

    /// Reads the `select` object of the socket operations, which must choose some sockets or
    /// say `"all": true`: making every socket join a room, or disconnecting everyone, is never
    /// what an empty selector was meant to do by accident.
    pub(crate) fn read_required(fields: &mut Fields) -> Result<Self, ApiError> {
        let mut select = fields.object("select")?.ok_or_else(|| {
            ApiError::field(
                "select",
                "missing: choose sockets with {\"rooms\": [...]}, {\"sockets\": [...]}, \
                 {\"users\": [...]} or {\"all\": true}",
            )
        })?;
        let selection = Self::read(&mut select)?;
        let all = select.optional::<bool>("all")?.unwrap_or(false);
        select.finish()?;
        if all && selection.targets_some() {
            return Err(ApiError::field(
                "select.all",
                "all: true chooses every socket; leave out rooms, sockets and users with it",
            ));
        }
        if !all && !selection.targets_some() {
            return Err(ApiError::field(
                "select",
                "chooses no sockets: give rooms, sockets or users, or all: true",
            ));
        }
        Ok(selection)
    }

    /// Whether rooms, sockets or users narrow the choice.
    fn targets_some(&self) -> bool {
        !(self.rooms.is_empty() && self.sockets.is_empty() && self.users.is_empty())
    }

    /// The broadcast operator targeting these sockets in `namespace`.
    pub(crate) fn operator(&self, namespace: &Arc<Namespace>) -> BroadcastOperator {
        let mut to: Vec<String> = self.rooms.clone();
        to.extend(self.sockets.iter().cloned());
        to.extend(self.users.iter().map(|user| user_room(user)));
        let mut operator = namespace.broadcast();
        if !to.is_empty() {
            operator = operator.to(to);
        }
        if !self.except.is_empty() {
            operator = operator.except(self.except.clone());
        }
        operator
    }
}
