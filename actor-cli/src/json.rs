//! Between the wire's msgpack values and JSON, for arguments typed on a command line and
//! results printed for people and scripts.

use actor::Value;
use serde_json::{Map, Number, Value as Json};

/// `value` as JSON: maps with non-string keys get their keys' JSON text as keys; bytes become
/// an array of numbers; extension values become `{"ext": type, "data": [bytes]}`.
pub(crate) fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => i
            .as_i64()
            .map(Number::from)
            .or_else(|| i.as_u64().map(Number::from))
            .map_or(Json::Null, Json::Number),
        Value::F32(f) => Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Value::F64(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_owned,
        )),
        Value::Binary(bytes) => Json::Array(bytes.iter().map(|b| Json::from(*b)).collect()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.as_str().map(str::to_owned),
                        _ => None,
                    }
                    .unwrap_or_else(|| to_json(k).to_string());
                    (key, to_json(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Ext(kind, data) => serde_json::json!({ "ext": kind, "data": data }),
    }
}

/// JSON as a msgpack value (integers stay integers).
pub(crate) fn from_json(json: Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::F64(n.as_f64().unwrap_or(f64::NAN))),
        Json::String(s) => Value::from(s),
        Json::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        Json::Object(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), from_json(v)))
                .collect(),
        ),
    }
}

/// A value typed on the command line: JSON where it parses (`3`, `true`, `[1,2]`, `"x"`),
/// else the text as a string (`hello`).
pub(crate) fn parse_arg(text: &str) -> Value {
    serde_json::from_str::<Json>(text).map_or_else(|_| Value::from(text), from_json)
}

/// `name=value` arguments as a call's keyword arguments.
pub(crate) fn kwargs(args: &[String]) -> Result<Value, String> {
    args.iter()
        .map(|arg| {
            let (name, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("argument {arg:?} is not name=value"))?;
            Ok((Value::from(name), parse_arg(value)))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Value::Map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_json_where_they_parse_and_text_otherwise() {
        assert_eq!(parse_arg("3"), Value::from(3));
        assert_eq!(parse_arg("-2.5"), Value::F64(-2.5));
        assert_eq!(parse_arg("true"), Value::Boolean(true));
        assert_eq!(parse_arg("hello"), Value::from("hello"));
        assert_eq!(parse_arg("\"7\""), Value::from("7"));
        assert_eq!(
            parse_arg("[1,\"a\"]"),
            Value::Array(vec![Value::from(1), Value::from("a")])
        );
        assert!(kwargs(&["novalue".into()]).is_err());
    }

    #[test]
    fn values_round_trip_through_json() {
        let value = Value::Map(vec![
            (Value::from("n"), Value::from(u64::MAX)),
            (
                Value::from("xs"),
                Value::Array(vec![Value::Nil, Value::F64(1.5)]),
            ),
        ]);
        assert_eq!(from_json(to_json(&value)), value);
        assert_eq!(to_json(&Value::Binary(vec![1, 2])).to_string(), "[1,2]");
    }
}
