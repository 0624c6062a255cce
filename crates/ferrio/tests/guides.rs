//! docs/coming-from-flask-socketio.md names only real things: every setting it writes is a key
//! of `ferrio config check` (and every `key = value` it shows loads as written), every variable
//! is in docs/configuration.md, every API route is in the OpenAPI document, every lint exists.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

const GUIDE: &str = include_str!("../../../docs/coming-from-flask-socketio.md");
const CONFIGURATION: &str = include_str!("../../../docs/configuration.md");
const OPENAPI: &str = include_str!("../src/api/openapi.rs");

/// `ferrio config check ARGS` in `dir` with a clean environment.
fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["config", "check", "--no-env-file"])
        .args(args)
        .output()
        .expect("run ferrio")
}

/// The report's settings: `key` -> the rest of its line.
fn settings(report: &str) -> Vec<(String, String)> {
    report
        .split_once("\n\n")
        .map_or(report, |(settings, _)| settings)
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(key, rest)| (key.trim().to_owned(), rest.to_owned()))
        .collect()
}

/// The text between backticks.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn the_flask_socketio_guide_names_real_settings_routes_and_lints() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = check(dir.path(), &[]);
    assert_eq!(defaults.status.code(), Some(0));
    let keys: BTreeSet<String> = settings(&String::from_utf8(defaults.stdout).unwrap())
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let sections: BTreeSet<&str> = keys.iter().filter_map(|k| k.split('.').next()).collect();
    assert!(keys.contains("heartbeat.ping_interval"), "{keys:?}");

    // `key = value` snippets, to load as one file.
    let mut snippets: Vec<(String, String)> = Vec::new();
    let (mut named_keys, mut vars, mut routes, mut lint_ids) = (0, 0, 0, 0);
    for span in code_spans(GUIDE) {
        let word: String = span
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        if let Some((section, _)) = word.split_once('.') {
            if sections.contains(section) {
                assert!(
                    keys.contains(&word),
                    "{word:?} (in `{span}`) is not a setting"
                );
                named_keys += 1;
                if let Some((_, value)) = span.split_once(" = ") {
                    snippets.push((word.clone(), value.to_owned()));
                }
            }
        }
        for prefix in ["FERRIO_", "SOCKETIO_", "SOCKET_IO_"] {
            if word.starts_with(prefix) && !span.ends_with('*') {
                assert!(
                    CONFIGURATION.contains(&format!("`{word}`")),
                    "{word} is not in docs/configuration.md"
                );
                vars += 1;
            }
        }
        for part in span.split_whitespace() {
            if let Some(route) = part.strip_prefix("/api/v1/") {
                let route = format!("/api/v1/{}", route.trim_end_matches(['.', ',']));
                assert!(
                    OPENAPI.contains(&format!("{route:?}")),
                    "{route} is not an API route"
                );
                routes += 1;
            }
        }
        let is_lint_id = span.contains('-')
            && span.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !span.starts_with('-');
        if is_lint_id {
            assert!(
                CONFIGURATION.contains(&format!("| `{span}` |")),
                "{span} is not a lint of docs/configuration.md"
            );
            lint_ids += 1;
        }
    }
    assert!(
        named_keys >= 15 && vars >= 8 && routes >= 5 && lint_ids >= 3,
        "{named_keys} keys, {vars} variables, {routes} routes, {lint_ids} lints"
    );

    // Every `key = value` the guide shows loads as written, from a file.
    let mut by_section: std::collections::BTreeMap<&str, String> = Default::default();
    let mut seen = BTreeSet::new();
    for (key, value) in &snippets {
        if seen.insert(key.clone()) {
            let (section, field) = key.split_once('.').unwrap();
            let lines = by_section.entry(section).or_default();
            lines.push_str(&format!("{field} = {value}\n"));
        }
    }
    let file: String = by_section
        .iter()
        .map(|(section, lines)| format!("[{section}]\n{lines}"))
        .collect();
    assert!(seen.len() >= 8, "{snippets:?}");
    std::fs::write(dir.path().join("guide.toml"), &file).unwrap();
    let loaded = check(dir.path(), &["--config", "guide.toml"]);
    let report = String::from_utf8(loaded.stdout).unwrap();
    assert_ne!(
        loaded.status.code(),
        Some(2),
        "{file}\n{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let printed = settings(&report);
    for key in &seen {
        let (_, line) = printed
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("{key} not printed:\n{report}"));
        assert!(
            line.ends_with("# file guide.toml"),
            "{key} = {line}\n{file}"
        );
    }
}
