use serde_json::{Map, Value};

use crate::DecodeError;

const PLACEHOLDER_KEY: &str = "_placeholder";
const NUM_KEY: &str = "num";

/// The JSON object that stands for attachment `num` inside a packet's arguments:
/// `{"_placeholder":true,"num":num}`.
pub fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert(PLACEHOLDER_KEY.to_owned(), Value::Bool(true));
    map.insert(NUM_KEY.to_owned(), Value::from(num));
    Value::Object(map)
}

/// The attachment index `value` stands for, if it is a placeholder: an object whose
/// `_placeholder` is `true` and whose `num` is a non-negative integer.
///
/// In a packet whose data has attachments, the [`Decoder`](crate::Decoder) has checked that
/// every such index is in range.
pub fn placeholder_num(value: &Value) -> Option<usize> {
    let map = value.as_object()?;
    if map.get(PLACEHOLDER_KEY) != Some(&Value::Bool(true)) {
        return None;
    }
    map.get(NUM_KEY)?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// Checks the placeholders of a binary packet announcing `count` attachments: every placeholder
/// has a valid `num` below `count`, and every attachment is referred to at least once.
pub(crate) fn check_placeholders(args: &[Value], count: usize) -> Result<(), DecodeError> {
    let mut seen = vec![false; count];
    for arg in args {
        visit(arg, &mut seen)?;
    }
    match seen.iter().position(|seen| !seen) {
        Some(index) => Err(DecodeError::UnreferencedAttachment { index }),
        None => Ok(()),
    }
}

/// Walks one JSON value. Recursion depth is bounded by the JSON parser's nesting limit.
fn visit(value: &Value, seen: &mut [bool]) -> Result<(), DecodeError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|item| visit(item, seen)),
        Value::Object(map) => {
            if map.get(PLACEHOLDER_KEY) == Some(&Value::Bool(true)) {
                let num = map
                    .get(NUM_KEY)
                    .and_then(Value::as_u64)
                    .ok_or(DecodeError::InvalidPlaceholder)?;
                let count = seen.len();
                let slot = usize::try_from(num)
                    .ok()
                    .and_then(|index| seen.get_mut(index))
                    .ok_or(DecodeError::PlaceholderOutOfRange { num, count })?;
                *slot = true;
                Ok(())
            } else {
                map.values().try_for_each(|item| visit(item, seen))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn build_and_recognise() {
        assert_eq!(placeholder(3), json!({"_placeholder": true, "num": 3}));
        assert_eq!(placeholder_num(&placeholder(3)), Some(3));
        assert_eq!(
            placeholder_num(&json!({"_placeholder": false, "num": 0})),
            None
        );
        assert_eq!(
            placeholder_num(&json!({"_placeholder": true, "num": -1})),
            None
        );
        assert_eq!(
            placeholder_num(&json!({"_placeholder": true, "num": 1.5})),
            None
        );
        assert_eq!(placeholder_num(&json!({"_placeholder": true})), None);
        assert_eq!(placeholder_num(&json!([true, 0])), None);
    }

    #[test]
    fn check_nested_and_repeated() {
        let args = [
            json!("ev"),
            json!({"a": [placeholder(1)], "b": placeholder(0)}),
            placeholder(1),
        ];
        assert!(check_placeholders(&args, 2).is_ok());
    }

    #[test]
    fn check_errors() {
        assert!(matches!(
            check_placeholders(&[placeholder(2)], 2),
            Err(DecodeError::PlaceholderOutOfRange { num: 2, count: 2 })
        ));
        assert!(matches!(
            check_placeholders(&[placeholder(1)], 2),
            Err(DecodeError::UnreferencedAttachment { index: 0 })
        ));
        assert!(matches!(
            check_placeholders(&[json!({"_placeholder": true, "num": "0"})], 1),
            Err(DecodeError::InvalidPlaceholder)
        ));
        // An object whose `_placeholder` is not `true` is ordinary data.
        assert!(check_placeholders(&[json!({"_placeholder": 1}), placeholder(0)], 1).is_ok());
    }
}
