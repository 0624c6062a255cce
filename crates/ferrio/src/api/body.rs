//! Reading a JSON request body: bounded in size, then taken apart field by field so that every
//! error names the field it is about.

use axum::body::Body;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;

/// Reads the whole body, refusing one longer than `max` bytes with 413, and parses it as a JSON
/// object. An empty body is an empty object, so that a POST without options needs no body.
pub(crate) async fn read_object(body: Body, max: usize) -> Result<Fields, ApiError> {
    let bytes = axum::body::to_bytes(body, max).await.map_err(|error| {
        let too_large =
            std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::TooLarge { max }
        } else {
            // The connection broke mid-body: there is hardly anyone left to answer.
            tracing::debug!(%error, "API request body not read");
            ApiError::InvalidJson(format!("the body could not be read: {error}"))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::new(Map::new()));
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(Fields::new(map)),
        other => Err(ApiError::InvalidJson(format!(
            "the body must be a JSON object, not {}",
            kind(&other)
        ))),
    }
}

/// The name of a JSON value's type, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of a JSON object, taken one by one; [`Fields::finish`] refuses the ones left.
#[derive(Debug)]
pub(crate) struct Fields {
    map: Map<String, Value>,
    /// The path of this object in the body (`select.` for a nested one), for error messages.
    prefix: String,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Self {
        Self {
            map,
            prefix: String::new(),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Field `name`, absent or `null` as `None`, else converted to `T`.
    pub(crate) fn optional<T: DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let found = kind(&value);
                serde_json::from_value(value).map(Some).map_err(|e| {
                    ApiError::field(self.path(name), format!("{} (found {found})", clean(&e)))
                })
            }
        }
    }

    /// Field `name`, which must be present.
    pub(crate) fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ApiError> {
        self.optional(name)?
            .ok_or_else(|| ApiError::field(self.path(name), "missing"))
    }

    /// Field `name` as raw JSON, if present (`null` included).
    pub(crate) fn raw(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// A list of non-empty strings (room names, ids), empty when absent.
    pub(crate) fn names(&mut self, name: &str) -> Result<Vec<String>, ApiError> {
        let list: Vec<String> = self.optional(name)?.unwrap_or_default();
        if let Some(at) = list.iter().position(String::is_empty) {
            return Err(ApiError::field(
                format!("{}[{at}]", self.path(name)),
                "must not be empty",
            ));
        }
        Ok(list)
    }

    /// The nested object `name`, if present.
    pub(crate) fn object(&mut self, name: &str) -> Result<Option<Fields>, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields {
                map,
                prefix: format!("{}.", self.path(name)),
            })),
            Some(other) => Err(ApiError::field(
                self.path(name),
                format!("must be an object, not {}", kind(&other)),
            )),
        }
    }

    /// Refuses the fields no one took: a misspelt option is an error, not silently ignored.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(name) => Err(ApiError::field(self.path(name), "unknown field")),
        }
    }
}

/// serde_json's message without its "at line 1 column 5" tail, meaningless for a lone value.
fn clean(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        match value {
            Value::Object(map) => Fields::new(map),
            _ => unreachable!(),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let mut f = fields(json!({"event": 5, "rooms": ["a", ""], "extra": 1}));
        assert_eq!(
            f.required::<String>("event").unwrap_err(),
            ApiError::field(
                "event",
                "invalid type: integer `5`, expected a string (found a number)"
            )
        );
        assert_eq!(
            f.names("rooms").unwrap_err(),
            ApiError::field("rooms[1]", "must not be empty")
        );
        assert_eq!(
            f.required::<bool>("volatile").unwrap_err(),
            ApiError::field("volatile", "missing")
        );
        assert_eq!(
            f.finish().unwrap_err(),
            ApiError::field("extra", "unknown field")
        );
    }

    #[test]
    fn nested_objects_prefix_their_fields() {
        let mut f = fields(json!({"select": {"users": "bob"}}));
        let mut select = f.object("select").unwrap().unwrap();
        assert_eq!(
            select.names("users").unwrap_err(),
            ApiError::field(
                "select.users",
                "invalid type: string \"bob\", expected a sequence (found a string)"
            )
        );
    }
}
