//! `ferrio config init`: a commented starter file with freshly generated secrets.

use std::io::Write;
use std::path::Path;

/// The starter file; `{jwt_secret}` and `{api_key}` are replaced by generated secrets.
const TEMPLATE: &str = include_str!("starter.toml");

/// Bytes of randomness in each generated secret (written as hex).
const SECRET_BYTES: usize = 32;

/// A fresh secret from the operating system's CSPRNG, as hex.
pub(crate) fn generate_secret() -> Result<String, String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot generate a secret: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The starter file's text with the given secrets.
pub(crate) fn render(jwt_secret: &str, api_key: &str) -> String {
    TEMPLATE
        .replace("{jwt_secret}", jwt_secret)
        .replace("{api_key}", api_key)
}

/// Writes the starter file; refuses to replace an existing file unless `force`. Owner-only
/// permissions: the file holds secrets.
pub(crate) fn write(path: &Path, force: bool) -> Result<(), String> {
    let text = render(&generate_secret()?, &generate_secret()?);
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} already exists; pass --force to overwrite it",
                path.display()
            )
        } else {
            format!("cannot write {}: {e}", path.display())
        }
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Config;

    #[test]
    fn the_starter_file_is_the_defaults_plus_secrets() {
        let text = render("a".repeat(64).as_str(), "b".repeat(64).as_str());
        let config: Config = toml::from_str(&text).unwrap();
        let mut expected = Config::default();
        expected.auth.jwt_secret = "a".repeat(64);
        expected.api.key = "b".repeat(64);
        assert_eq!(config, expected);
    }

    #[test]
    fn the_starter_file_names_every_key() {
        for key in crate::config::keys::KEYS {
            let (_, field) = key.split();
            assert!(
                TEMPLATE.contains(&format!("\n{field} ="))
                    || TEMPLATE.contains(&format!("\n# {field} =")),
                "{} missing from the starter file",
                key.name
            );
        }
    }

    #[test]
    fn secrets_differ() {
        let (a, b) = (generate_secret().unwrap(), generate_secret().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}
