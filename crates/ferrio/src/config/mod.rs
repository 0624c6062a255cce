//! The gateway's configuration: one typed [`model::Config`], loaded from defaults < TOML file <
//! `.env` < environment < command-line flags with the source of every value
//! ([`sources`]), linted ([`lint`]), and turned into the libraries' settings ([`build`]).
//! `docs/configuration.md` is the reference.

pub(crate) mod build;
pub(crate) mod duration;
pub(crate) mod init;
pub(crate) mod keys;
pub(crate) mod lint;
pub(crate) mod model;
pub(crate) mod sources;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cli::{ConfigSources, InitArgs};
use keys::{Kind, KEYS};
use lint::{Lint, Severity};
use sources::{Inputs, Loaded, Source};

/// Exit status when the configuration cannot be loaded at all.
pub(crate) const EXIT_LOAD_ERROR: i32 = 2;

impl ConfigSources {
    /// The inputs to [`sources::load`], with the process environment.
    pub(crate) fn inputs(&self) -> Result<Inputs, String> {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let mut flags = Vec::new();
        for set in &self.set {
            let (key, value) = set
                .split_once('=')
                .ok_or_else(|| format!("--set {set:?}: expected KEY=VALUE"))?;
            flags.push((
                key.trim().to_owned(),
                value.to_owned(),
                format!("--set {}", key.trim()),
            ));
        }
        let named = [
            ("server.host", &self.host, "--host"),
            ("server.port", &self.port, "--port"),
            ("server.path", &self.path, "--path"),
            (
                "heartbeat.ping_interval",
                &self.ping_interval,
                "--ping-interval",
            ),
            (
                "heartbeat.ping_timeout",
                &self.ping_timeout,
                "--ping-timeout",
            ),
            ("limits.max_payload", &self.max_payload, "--max-payload"),
            ("log.level", &self.log_level, "--log-level"),
        ];
        for (key, value, flag) in named {
            if let Some(value) = value {
                flags.push((key.to_owned(), value.clone(), flag.to_owned()));
            }
        }
        Ok(Inputs {
            config_path: self.config.clone(),
            env_file: self.env_file.clone(),
            no_env_file: self.no_env_file,
            env,
            flags,
        })
    }

    /// Loads the configuration these flags and the process environment describe.
    pub(crate) fn load(&self) -> Result<Loaded, String> {
        sources::load(&self.inputs()?)
    }
}

/// `ferrio config check`: prints the effective configuration and the lints; returns the exit
/// status (0 clean or warnings only, 1 errors, 2 not loadable).
pub(crate) fn run_check(args: &ConfigSources) -> i32 {
    let loaded = match args.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_LOAD_ERROR;
        }
    };
    let lints = lint::check(&loaded);
    print!("{}", report(&loaded, &lints));
    if lints.iter().any(|l| l.severity == Severity::Error) {
        1
    } else {
        0
    }
}

/// `ferrio config init`: returns the exit status.
pub(crate) fn run_init(args: &InitArgs) -> i32 {
    match init::write(&args.path, args.force) {
        Ok(()) => {
            println!(
                "wrote {} with a freshly generated auth.jwt_secret and api.key; \
                 check it with: ferrio config check --config {}",
                args.path.display(),
                args.path.display()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// The effective configuration, one `key = value  # source` line per key (valid TOML, secrets
/// hidden), then the lints and a summary line.
pub(crate) fn report(loaded: &Loaded, lints: &[Lint]) -> String {
    let mut out = String::new();
    let shown = |path: &Option<std::path::PathBuf>| {
        path.as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.display().to_string())
    };
    let _ = writeln!(
        out,
        "# Effective configuration (file: {}; .env: {})",
        shown(&loaded.file),
        shown(&loaded.env_file)
    );
    let values = toml::Table::try_from(&loaded.config).unwrap_or_default();
    for key in KEYS {
        let (section, field) = key.split();
        let value = values
            .get(section)
            .and_then(|s| s.get(field))
            .map(toml::Value::to_string)
            .unwrap_or_default();
        let origin = loaded.origin(key.name);
        let value = match key.kind {
            Kind::Secret if value != "\"\"" => {
                let len = value.len().saturating_sub(2);
                format!("\"(hidden, {len} characters)\"")
            }
            _ => value,
        };
        let mut comment = origin.source.to_string();
        let secret = key.kind == Kind::Secret;
        if !secret
            && origin.source != Source::Default
            && origin.given != value
            && origin.given != value.trim_matches('"')
        {
            let _ = write!(comment, " ({:?})", origin.given);
        }
        let _ = writeln!(out, "{:<48} # {comment}", format!("{} = {value}", key.name));
    }
    let errors = lints
        .iter()
        .filter(|l| l.severity == Severity::Error)
        .count();
    let warnings = lints.len() - errors;
    out.push('\n');
    for lint in lints {
        let _ = writeln!(out, "{lint}");
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "{errors} error{}, {warnings} warning{}",
        plural(errors),
        plural(warnings)
    );
    out
}
