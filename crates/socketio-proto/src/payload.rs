//! The arguments of an event or acknowledgement: JSON values and binary attachments.

use crate::{placeholder, placeholder_num, PacketData};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The arguments of one event or acknowledgement (after the event name).
///
/// Binary arguments travel as attachments: in [`Payload::args`] each one is a placeholder
/// object `{"_placeholder":true,"num":N}` standing for `attachments[N]`, wherever it sits (top
/// level or nested). Use [`Payload::push_binary`] or [`Payload::attach`] to send binary data and
/// [`Payload::binary`] / [`Payload::binary_at`] to read it.
///
/// Typed access goes through serde: [`Payload::get`] reads one argument,
/// [`Payload::decode`] reads them all as a tuple.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// The JSON arguments, placeholders in place of binary values.
    pub args: Vec<Value>,
    /// The binary attachments, in placeholder order.
    pub attachments: Vec<Bytes>,
}

impl Payload {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// One JSON argument.
    pub fn json(value: impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(Self::from_args(vec![serde_json::to_value(value)?]))
    }

    /// These JSON arguments.
    pub fn from_args(args: Vec<Value>) -> Self {
        Self {
            args,
            attachments: Vec::new(),
        }
    }

    /// One binary argument.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        let mut payload = Self::new();
        payload.push_binary(data);
        payload
    }

    /// Appends a JSON argument.
    pub fn push(&mut self, value: impl Serialize) -> Result<&mut Self, serde_json::Error> {
        self.args.push(serde_json::to_value(value)?);
        Ok(self)
    }

    /// Appends a binary argument.
    pub fn push_binary(&mut self, data: impl Into<Bytes>) -> &mut Self {
        let value = self.attach(data);
        self.args.push(value);
        self
    }

    /// Adds an attachment and returns the placeholder to put where it belongs inside a nested
    /// value.
    pub fn attach(&mut self, data: impl Into<Bytes>) -> Value {
        self.attachments.push(data.into());
        placeholder(self.attachments.len() - 1)
    }

    /// The attachment a placeholder value stands for.
    pub fn binary_of(&self, value: &Value) -> Option<&Bytes> {
        placeholder_num(value).and_then(|num| self.attachments.get(num))
    }

    /// The attachment argument `index` stands for, when it is a binary argument.
    pub fn binary_at(&self, index: usize) -> Option<&Bytes> {
        self.args.get(index).and_then(|value| self.binary_of(value))
    }

    /// Argument `index` deserialized as `T`.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgError> {
        let value = self.args.get(index).ok_or(ArgError::Missing { index })?;
        T::deserialize(value).map_err(|source| ArgError::Invalid {
            index: Some(index),
            source,
        })
    }

    /// All the arguments deserialized as one sequence, typically a tuple:
    /// `payload.decode::<(String, u32)>()`.
    ///
    /// With connection state recovery on, the server appends an offset to the events it may
    /// replay; a tuple must then have room for it (or read arguments with [`Payload::get`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ArgError> {
        T::deserialize(Value::Array(self.args.clone())).map_err(|source| ArgError::Invalid {
            index: None,
            source,
        })
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The wire form of an event: `name` followed by the arguments. (Whether `name` is one a
    /// sender may use is the sender's check.)
    pub fn into_event_data(self, name: &str) -> PacketData {
        let mut args = Vec::with_capacity(self.args.len() + 1);
        args.push(Value::String(name.to_owned()));
        args.extend(self.args);
        PacketData::with_attachments(args, self.attachments)
    }

    /// The wire form of an acknowledgement.
    pub fn into_ack_data(self) -> PacketData {
        PacketData::with_attachments(self.args, self.attachments)
    }
}

impl From<PacketData> for Payload {
    fn from(data: PacketData) -> Self {
        Self {
            args: data.args,
            attachments: data.attachments,
        }
    }
}

impl From<Payload> for PacketData {
    fn from(payload: Payload) -> Self {
        payload.into_ack_data()
    }
}

/// An argument could not be read as the type asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// There is no argument at this position.
    #[error("no argument at position {index}")]
    Missing {
        /// The position asked for.
        index: usize,
    },
    /// The argument (or, for [`Payload::decode`], the arguments) has another shape.
    #[error("{} has an unexpected shape: {source}", index.map(|i| format!("argument {i}")).unwrap_or_else(|| "the argument list".to_owned()))]
    Invalid {
        /// The position asked for; `None` for the whole list.
        index: Option<usize>,
        /// What serde found.
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binary_arguments_become_placeholders() {
        let mut payload = Payload::json("first").expect("serializable");
        payload.push_binary(Bytes::from_static(b"\x01"));
        let nested = payload.attach(Bytes::from_static(b"\x02"));
        payload
            .push(json!({ "file": nested }))
            .expect("serializable");
        assert_eq!(
            payload.args,
            vec![
                json!("first"),
                json!({"_placeholder": true, "num": 0}),
                json!({"file": {"_placeholder": true, "num": 1}}),
            ]
        );
        assert_eq!(payload.binary_at(1).map(|b| &b[..]), Some(&b"\x01"[..]));
        assert_eq!(
            payload.binary_of(&payload.args[2]["file"]).map(|b| &b[..]),
            Some(&b"\x02"[..])
        );
        assert_eq!(payload.binary_at(0), None);

        let data = payload.clone().into_event_data("upload");
        assert_eq!(data.args[0], json!("upload"));
        assert_eq!(data.attachments.len(), 2);
        assert_eq!(Payload::from(payload.clone().into_ack_data()), payload);
    }

    #[test]
    fn typed_access() {
        let payload = Payload::from_args(vec![json!("a"), json!(2)]);
        assert_eq!(payload.get::<String>(0).ok().as_deref(), Some("a"));
        assert!(matches!(
            payload.get::<u8>(0),
            Err(ArgError::Invalid { index: Some(0), .. })
        ));
        assert!(matches!(
            payload.get::<u8>(9),
            Err(ArgError::Missing { index: 9 })
        ));
        assert_eq!(
            payload.decode::<(String, u32)>().ok(),
            Some(("a".to_owned(), 2))
        );
        assert!(matches!(
            payload.decode::<(String,)>(),
            Err(ArgError::Invalid { index: None, .. })
        ));
    }
}
