//! Loading: defaults < TOML file < `.env` < environment < command-line flags, each value with
//! the source it came from.
//!
//! The process environment is passed in as a map and never modified: `.env` is read with
//! `dotenvy::from_path_iter`, not loaded into the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::duration;
use super::keys::{self, Key, Kind, CONFIG_VAR, KEYS};
use super::model::Config;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The built-in default.
    Default,
    /// The TOML file.
    File(PathBuf),
    /// A variable of the `.env` file.
    DotEnv { path: PathBuf, var: String },
    /// A variable of the process environment.
    Env { var: String },
    /// A command-line flag.
    Flag { flag: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::DotEnv { path, var } => write!(f, "dotenv {} {var}", path.display()),
            Self::Env { var } => write!(f, "env {var}"),
            Self::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}

/// The source of one effective value, and what was written there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The source that won.
    pub(crate) source: Source,
    /// The value as written in that source (TOML syntax for the file and defaults).
    pub(crate) given: String,
    /// Other variables of the same layer that set this key differently and lost, with the
    /// value they gave.
    pub(crate) shadowed: Vec<(Source, String)>,
}

/// A loaded configuration and the origin of every key.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// The effective configuration.
    pub(crate) config: Config,
    /// Key name to origin, for every key.
    pub(crate) origins: BTreeMap<&'static str, Origin>,
    /// `FERRIO_*` variables (environment or `.env`) that are no setting: likely typos.
    pub(crate) unknown_vars: Vec<Source>,
    /// The configuration file read, if any.
    pub(crate) file: Option<PathBuf>,
    /// The `.env` file read, if any.
    pub(crate) env_file: Option<PathBuf>,
}

impl Loaded {
    /// The origin of a key.
    pub(crate) fn origin(&self, key: &str) -> &Origin {
        &self.origins[key]
    }
}

/// What to load from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inputs {
    /// `--config`: takes precedence over `FERRIO_CONFIG`.
    pub(crate) config_path: Option<PathBuf>,
    /// `--env-file`; `None` reads `./.env` when it exists.
    pub(crate) env_file: Option<PathBuf>,
    /// `--no-env-file`.
    pub(crate) no_env_file: bool,
    /// The process environment.
    pub(crate) env: BTreeMap<String, String>,
    /// Flags, in order, as (key, value, flag as written); later ones win.
    pub(crate) flags: Vec<(String, String, String)>,
}

/// A value before it is read according to its key's kind.
enum Raw {
    /// From the environment, `.env` or a flag.
    Text(String),
    /// From TOML.
    Toml(toml::Value),
}

/// Loads the configuration. The error is one line saying what is wrong and where.
pub(crate) fn load(inputs: &Inputs) -> Result<Loaded, String> {
    let mut merged: BTreeMap<&'static str, (toml::Value, Origin)> = BTreeMap::new();

    // Defaults.
    let defaults = toml::Table::try_from(Config::default()).map_err(|e| e.to_string())?;
    for (name, value) in flatten(&defaults) {
        let key = keys::find(&name).ok_or_else(|| format!("default for unknown key {name}"))?;
        merged.insert(
            key.name,
            (
                value.clone(),
                Origin {
                    source: Source::Default,
                    given: value.to_string(),
                    shadowed: Vec::new(),
                },
            ),
        );
    }

    // `.env`, read first because it may name the configuration file.
    let env_file = match (&inputs.env_file, inputs.no_env_file) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => Some(PathBuf::from(".env")).filter(|p| p.is_file()),
    };
    let mut dotenv = BTreeMap::new();
    if let Some(path) = &env_file {
        let iter = dotenvy::from_path_iter(path)
            .map_err(|e| format!("cannot read the .env file {}: {e}", path.display()))?;
        for item in iter {
            let (var, value) =
                item.map_err(|e| format!("cannot parse the .env file {}: {e}", path.display()))?;
            dotenv.insert(var, value);
        }
    }

    // The TOML file.
    let file = inputs
        .config_path
        .clone()
        .or_else(|| inputs.env.get(CONFIG_VAR).map(PathBuf::from))
        .or_else(|| dotenv.get(CONFIG_VAR).map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
        for (name, value) in flatten_checked(&table, path)? {
            let key = keys::find(&name).expect("checked");
            let source = Source::File(path.clone());
            set(&mut merged, key, Raw::Toml(value), source, Vec::new())?;
        }
    }

    // `.env`, then the environment.
    let mut unknown_vars = Vec::new();
    if let Some(path) = &env_file {
        let source = |var: &str| Source::DotEnv {
            path: path.clone(),
            var: var.to_owned(),
        };
        apply_vars(&mut merged, &dotenv, &source)?;
        unknown_vars.extend(unknown(&dotenv).map(source));
    }
    let source = |var: &str| Source::Env {
        var: var.to_owned(),
    };
    apply_vars(&mut merged, &inputs.env, &source)?;
    unknown_vars.extend(unknown(&inputs.env).map(source));

    // Flags.
    for (name, value, flag) in &inputs.flags {
        let key = keys::find(name).ok_or_else(|| {
            format!("unknown key {name:?} in {flag}; docs/configuration.md lists every key")
        })?;
        let source = Source::Flag { flag: flag.clone() };
        set(
            &mut merged,
            key,
            Raw::Text(value.clone()),
            source,
            Vec::new(),
        )?;
    }

    let mut table = toml::Table::new();
    let mut origins = BTreeMap::new();
    for (name, (value, origin)) in merged {
        let (section, field) = name.split_once('.').expect("keys are section.field");
        table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("sections are tables")
            .insert(field.to_owned(), value);
        origins.insert(name, origin);
    }
    let config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    Ok(Loaded {
        config,
        origins,
        unknown_vars,
        file,
        env_file,
    })
}

/// `FERRIO_*` variables that are no setting.
fn unknown(vars: &BTreeMap<String, String>) -> impl Iterator<Item = &str> {
    vars.keys()
        .map(String::as_str)
        .filter(|var| var.starts_with("FERRIO_") && !keys::is_known_var(var))
}

/// Applies one layer of variables: for each key, its first set name wins.
fn apply_vars(
    merged: &mut BTreeMap<&'static str, (toml::Value, Origin)>,
    vars: &BTreeMap<String, String>,
    source: &dyn Fn(&str) -> Source,
) -> Result<(), String> {
    for key in KEYS {
        let mut set_names = key
            .env_names()
            .into_iter()
            .filter_map(|name| vars.get(&name).map(|value| (name, value)));
        let Some((var, value)) = set_names.next() else {
            continue;
        };
        let shadowed = set_names
            .filter(|(_, other)| other.trim() != value.trim())
            .map(|(name, other)| (source(&name), other.clone()))
            .collect();
        set(
            merged,
            key,
            Raw::Text(value.clone()),
            source(&var),
            shadowed,
        )?;
    }
    Ok(())
}

/// Reads a raw value as its key's kind, checks it, and makes it the key's effective value.
fn set(
    merged: &mut BTreeMap<&'static str, (toml::Value, Origin)>,
    key: &'static Key,
    raw: Raw,
    source: Source,
    shadowed: Vec<(Source, String)>,
) -> Result<(), String> {
    let given = match &raw {
        Raw::Text(text) => text.clone(),
        Raw::Toml(value) => value.to_string(),
    };
    let shown = if key.kind == Kind::Secret {
        "(hidden)".to_owned()
    } else {
        format!("{given:?}")
    };
    let value = normalize(key.kind, raw)
        .and_then(|value| check(key, &value).map(|()| value))
        .map_err(|e| format!("{} = {shown} from {source}: {e}", key.name))?;
    merged.insert(
        key.name,
        (
            value,
            Origin {
                source,
                given,
                shadowed,
            },
        ),
    );
    Ok(())
}

/// Reads a value as a kind, into the TOML value the model deserializes.
fn normalize(kind: Kind, raw: Raw) -> Result<toml::Value, String> {
    use toml::Value;
    match (kind, raw) {
        (Kind::Text | Kind::Secret, Raw::Text(text)) => Ok(Value::String(text)),
        (Kind::Text | Kind::Secret, Raw::Toml(value @ Value::String(_))) => Ok(value),
        (Kind::Bool, Raw::Text(text)) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" | "" => Ok(Value::Boolean(false)),
            _ => Err("expected true or false".to_owned()),
        },
        (Kind::Bool, Raw::Toml(value @ Value::Boolean(_))) => Ok(value),
        (Kind::Int, Raw::Text(text)) => text
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Value::Integer)
            .ok_or_else(|| "expected a whole number".to_owned()),
        (Kind::Int, Raw::Toml(Value::Integer(n))) if n >= 0 => Ok(Value::Integer(n)),
        (Kind::Duration, Raw::Text(text) | Raw::Toml(Value::String(text))) => {
            duration::parse(&text).map(|d| Value::String(duration::format(d)))
        }
        (Kind::Duration, Raw::Toml(Value::Integer(n))) if n >= 0 => Ok(Value::String(
            duration::format(std::time::Duration::from_millis(n as u64)),
        )),
        (Kind::List, Raw::Text(text) | Raw::Toml(Value::String(text))) => Ok(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        )),
        (Kind::List, Raw::Toml(Value::Array(items))) => items
            .into_iter()
            .map(|item| match item {
                Value::String(_) => Ok(item),
                _ => Err("expected a list of strings".to_owned()),
            })
            .collect::<Result<_, _>>()
            .map(Value::Array),
        (kind, Raw::Toml(_)) => Err(match kind {
            Kind::Text | Kind::Secret => "expected a string",
            Kind::Bool => "expected true or false",
            Kind::Int => "expected a whole number",
            Kind::Duration => "expected a duration such as \"25s\" or whole milliseconds",
            Kind::List => "expected a list of strings",
        }
        .to_owned()),
    }
}

/// Checks a value against the model: enumerations, ranges.
fn check(key: &Key, value: &toml::Value) -> Result<(), String> {
    let (section, field) = key.split();
    let mut inner = toml::Table::new();
    inner.insert(field.to_owned(), value.clone());
    let mut outer = toml::Table::new();
    outer.insert(section.to_owned(), toml::Value::Table(inner));
    toml::Value::Table(outer)
        .try_into::<Config>()
        .map(|_| ())
        .map_err(|e| e.to_string().trim().to_owned())
}

/// The `section.field` keys of a table and their values.
fn flatten(table: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (section, value) in table {
        if let Some(fields) = value.as_table() {
            for (field, value) in fields {
                out.push((format!("{section}.{field}"), value.clone()));
            }
        }
    }
    out
}

/// [`flatten`], refusing what is not a known key.
fn flatten_checked(table: &toml::Table, path: &Path) -> Result<Vec<(String, toml::Value)>, String> {
    for (section, value) in table {
        let known: Vec<&str> = KEYS
            .iter()
            .filter_map(|k| k.name.strip_prefix(section.as_str())?.strip_prefix('.'))
            .collect();
        if known.is_empty() {
            return Err(format!(
                "unknown section [{section}] in {}; docs/configuration.md lists every key",
                path.display()
            ));
        }
        let Some(fields) = value.as_table() else {
            return Err(format!(
                "{section} in {} must be a table ([{section}])",
                path.display()
            ));
        };
        for field in fields.keys() {
            if !known.contains(&field.as_str()) {
                return Err(format!(
                    "unknown key {section}.{field} in {}; [{section}] has: {}",
                    path.display(),
                    known.join(", ")
                ));
            }
        }
    }
    Ok(flatten(table))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Inputs {
        Inputs {
            no_env_file: true,
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Inputs::default()
        }
    }

    #[test]
    fn defaults_with_no_input() {
        let loaded = load(&env(&[])).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.origins.values().all(|o| o.source == Source::Default));
        assert_eq!(loaded.origins.len(), KEYS.len());
    }

    #[test]
    fn canonical_name_beats_aliases_and_conflicts_are_kept() {
        let loaded = load(&env(&[
            ("FERRIO_HEARTBEAT_PING_TIMEOUT", "30s"),
            ("SOCKETIO_PING_TIMEOUT", "40s"),
            ("SOCKET_IO_PING_TIMEOUT", "30s"),
        ]))
        .unwrap();
        assert_eq!(
            loaded.config.heartbeat.ping_timeout,
            Duration::from_secs(30)
        );
        let origin = loaded.origin("heartbeat.ping_timeout");
        assert_eq!(
            origin.source.to_string(),
            "env FERRIO_HEARTBEAT_PING_TIMEOUT"
        );
        assert_eq!(origin.shadowed.len(), 1, "the same value is no conflict");
    }

    #[test]
    fn kinds_from_text() {
        let loaded = load(&env(&[
            ("SOCKETIO_TRANSPORTS", "websocket, polling"),
            ("SOCKETIO_CORS_CREDENTIALS", "yes"),
            ("SOCKETIO_MAX_HTTP_BUFFER_SIZE", "5_000_000"),
            ("SOCKETIO_PING_INTERVAL", "25000"),
        ]))
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.engine.transports.len(), 2);
        assert!(c.cors.credentials);
        assert_eq!(c.limits.max_payload, 5_000_000);
        assert_eq!(c.heartbeat.ping_interval, Duration::from_secs(25));
    }

    #[test]
    fn errors_name_the_key_and_source() {
        let err = load(&env(&[("SOCKETIO_TRANSPORTS", "websockets")])).unwrap_err();
        assert!(
            err.starts_with("engine.transports = \"websockets\" from env SOCKETIO_TRANSPORTS: "),
            "{err}"
        );
        let err = load(&env(&[("FERRIO_SERVER_PORT", "70000")])).unwrap_err();
        assert!(err.contains("server.port"), "{err}");
        let err = load(&env(&[
            ("FERRIO_AUTH_JWT_SECRET", "x"),
            ("FERRIO_CLUSTER_NODES", "-1"),
        ]))
        .unwrap_err();
        assert!(err.contains("cluster.nodes = \"-1\""), "{err}");
    }

    #[test]
    fn flags_win_and_unknown_flag_keys_are_refused() {
        let mut inputs = env(&[("FERRIO_SERVER_PORT", "4000")]);
        inputs
            .flags
            .push(("server.port".into(), "5000".into(), "--port".into()));
        let loaded = load(&inputs).unwrap();
        assert_eq!(loaded.config.server.port, 5000);
        assert_eq!(
            loaded.origin("server.port").source.to_string(),
            "flag --port"
        );
        inputs
            .flags
            .push(("server.prot".into(), "1".into(), "--set".into()));
        assert!(load(&inputs)
            .unwrap_err()
            .contains("unknown key \"server.prot\""));
    }

    #[test]
    fn dotenv_is_read_but_never_loaded_into_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.env");
        std::fs::write(
            &path,
            "FERRIO_TEST_NEVER_SET_PORT=1\nFERRIO_SERVER_PORT=4321\n",
        )
        .unwrap();
        let inputs = Inputs {
            env_file: Some(path.clone()),
            ..Inputs::default()
        };
        let loaded = load(&inputs).unwrap();
        assert_eq!(loaded.config.server.port, 4321);
        assert_eq!(
            loaded.origin("server.port").source,
            Source::DotEnv {
                path,
                var: "FERRIO_SERVER_PORT".into()
            }
        );
        assert!(std::env::var_os("FERRIO_TEST_NEVER_SET_PORT").is_none());
    }

    #[test]
    fn unknown_ferrio_variables_are_reported() {
        let loaded = load(&env(&[("FERRIO_PING_INTERVAL", "1s"), ("OTHER", "x")])).unwrap();
        assert_eq!(
            loaded.unknown_vars,
            vec![Source::Env {
                var: "FERRIO_PING_INTERVAL".into()
            }]
        );
    }
}
