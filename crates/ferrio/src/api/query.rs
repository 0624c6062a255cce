//! Query parameters of the GET routes, taken one by one; unknown ones are refused.

use std::collections::HashMap;

use super::error::ApiError;

/// The parameters of one request.
#[derive(Debug)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Wraps the parsed query.
    pub(crate) fn new(params: HashMap<String, String>) -> Self {
        Self(params)
    }

    /// `namespace`, `/` when absent.
    pub(crate) fn namespace(&mut self) -> String {
        self.0.remove("namespace").unwrap_or_else(|| "/".to_owned())
    }

    /// Parameter `name`, which must not be empty when given.
    pub(crate) fn optional(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.remove(name) {
            Some(value) if value.is_empty() => Err(ApiError::InvalidQuery {
                parameter: name.to_owned(),
                message: "must not be empty".to_owned(),
            }),
            other => Ok(other),
        }
    }

    /// Refuses the parameters no one took.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        let mut left: Vec<&String> = self.0.keys().collect();
        left.sort();
        match left.first() {
            None => Ok(()),
            Some(name) => Err(ApiError::InvalidQuery {
                parameter: (*name).clone(),
                message: "unknown parameter".to_owned(),
            }),
        }
    }
}
