//! The arguments of an event or acknowledgement: JSON values and binary attachments.

use crate::{placeholder, placeholder_num, PacketData};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The arguments of one event or acknowledgement.
///
/// Binary arguments travel as attachments: in [`Payload::args`] each one is a placeholder object
/// `{"_placeholder":true,"num":N}` standing for `attachments[N]`, wherever it sits (top level or
/// nested). Echoing a payload back keeps its binary parts binary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// The JSON arguments, placeholders in place.
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
        Ok(Self {
            args: vec![serde_json::to_value(value)?],
            attachments: Vec::new(),
        })
    }

    /// These JSON arguments.
    pub fn from_args(args: Vec<Value>) -> Self {
        Self {
            args,
            attachments: Vec::new(),
        }
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

    /// Adds an attachment and returns the placeholder to put where it belongs in a nested value.
    pub fn attach(&mut self, data: impl Into<Bytes>) -> Value {
        self.attachments.push(data.into());
        placeholder(self.attachments.len() - 1)
    }

    /// The attachment a placeholder value stands for.
    pub fn binary(&self, value: &Value) -> Option<&Bytes> {
        placeholder_num(value).and_then(|num| self.attachments.get(num))
    }

    /// Argument `index` deserialized as `T`.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgError> {
        let value = self.args.get(index).ok_or(ArgError::Missing { index })?;
        T::deserialize(value).map_err(|source| ArgError::Invalid { index, source })
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
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
        PacketData::with_attachments(payload.args, payload.attachments)
    }
}

/// An argument could not be read as the type asked for.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    /// There is no argument at this position.
    #[error("no argument at position {index}")]
    Missing {
        /// The position asked for.
        index: usize,
    },
    /// The argument has another shape.
    #[error("argument {index} has an unexpected shape: {source}")]
    Invalid {
        /// The position asked for.
        index: usize,
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
        assert_eq!(
            payload.binary(&payload.args[1]).map(|b| &b[..]),
            Some(&b"\x01"[..])
        );
        assert_eq!(payload.get::<String>(0).ok().as_deref(), Some("first"));
        assert!(matches!(
            payload.get::<u8>(0),
            Err(ArgError::Invalid { index: 0, .. })
        ));
        assert!(matches!(
            payload.get::<u8>(9),
            Err(ArgError::Missing { index: 9 })
        ));
    }
}
