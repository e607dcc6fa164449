//! Secrets outside the file: `${VAR}` expansion and `<key>_file`, for every secret key.
//! Every error names the key (and the variable or path) and never the value.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::secrets::{ExpandError, expand, read};
use super::tests::{env, errors_with, ok};
use super::*;
use crate::env::Env;

const SECRET: &str = "s3cret-Value";

fn with(pairs: &[(&str, &str)]) -> Env {
    let base = [("HOME", "/home/op"), ("XDG_RUNTIME_DIR", "/run/user/1000")];
    Env::from_pairs(base.iter().chain(pairs).copied())
}

fn secret_file(dir: &Path, name: &str, content: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

fn assert_no_secret(errors: &[String]) {
    for error in errors {
        assert!(!error.contains(SECRET), "the value leaked: {error}");
    }
}

#[test]
fn expansion_table() {
    let env = Env::from_pairs([("A", "x"), ("B_2", "y"), ("EMPTY", "")]);
    let cases: [(&str, Result<&str, ExpandError>); 12] = [
        ("${A}", Ok("x")),
        ("pre-${A}-${B_2}-post", Ok("pre-x-y-post")),
        ("$${A}", Ok("${A}")),
        ("$$${A}", Ok("$${A}")),
        ("a$b $ $1 $}", Ok("a$b $ $1 $}")),
        ("no dollars", Ok("no dollars")),
        ("${MISSING}", Err(ExpandError::Unset("MISSING".into()))),
        ("${EMPTY}", Err(ExpandError::Unset("EMPTY".into()))),
        ("${A", Err(ExpandError::Malformed)),
        ("${}", Err(ExpandError::Malformed)),
        ("${1A}", Err(ExpandError::Malformed)),
        ("${A B}", Err(ExpandError::Malformed)),
    ];
    for (text, want) in cases {
        assert_eq!(expand(text, &env), want.map(str::to_owned), "{text}");
    }
}

#[test]
fn sasl_password_from_the_environment() {
    let yaml = "server: {sasl: {username: bot, password: '${SASL_PW}'}}\n";
    let config = parse(yaml, &with(&[("SASL_PW", SECRET)])).unwrap().config;
    assert_eq!(config.server.sasl.unwrap().password, SECRET);
    let embedded = "server: {sasl: {username: bot, password: 'pre-${SASL_PW}'}}\n";
    let config = parse(embedded, &with(&[("SASL_PW", SECRET)]))
        .unwrap()
        .config;
    assert_eq!(
        config.server.sasl.unwrap().password,
        format!("pre-{SECRET}")
    );
    let escaped = "server: {sasl: {username: bot, password: '$${SASL_PW}'}}\n";
    assert_eq!(
        ok(escaped).config.server.sasl.unwrap().password,
        "${SASL_PW}"
    );
}

#[test]
fn an_unset_variable_names_the_key_and_the_variable() {
    let yaml = "server: {sasl: {username: bot, password: '${SASL_PW}'}}\n\
                webhooks: {url: 'https://hooks.test/${HOOK_TOKEN}'}\n\
                telemetry: {otlp_headers: 'authorization=${OTLP_TOKEN}'}\n";
    let errors = errors_with(yaml, &with(&[("OTLP_TOKEN", "")]));
    assert_eq!(
        errors,
        [
            "server.sasl.password: environment variable SASL_PW (referenced as ${SASL_PW}) is unset or empty",
            "webhooks.url: environment variable HOOK_TOKEN (referenced as ${HOOK_TOKEN}) is unset or empty",
            "telemetry.otlp_headers: environment variable OTLP_TOKEN (referenced as ${OTLP_TOKEN}) is unset or empty",
        ]
    );
    let malformed = format!("server: {{sasl: {{username: bot, password: '{SECRET}${{'}}}}\n");
    let errors = errors_with(&malformed, &env());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("server.sasl.password: \"${\" must start"),
        "{errors:?}"
    );
    assert_no_secret(&errors);
}

#[test]
fn every_secret_key_reads_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let password = secret_file(dir.path(), "pw", &format!("{SECRET}\n"), 0o600);
    let url = secret_file(dir.path(), "url", "https://hooks.test/api/t0ken\r\n", 0o400);
    secret_file(dir.path(), "h", "authorization=Bearer%20t0ken\n\n", 0o600);
    let yaml = format!(
        "server: {{sasl: {{username: bot, password_file: '{password}'}}}}\n\
         webhooks: {{url_file: '{url}'}}\n\
         telemetry: {{otlp_headers_file: '${{SECRETS}}/h'}}\n"
    );
    let secrets_dir = dir.path().display().to_string();
    let config = parse(&yaml, &with(&[("SECRETS", &secrets_dir)]))
        .unwrap()
        .config;
    assert_eq!(config.server.sasl.unwrap().password, SECRET);
    assert_eq!(
        config.webhooks.url.as_deref(),
        Some("https://hooks.test/api/t0ken")
    );
    // Only one trailing newline is stripped; the second makes the value end in "\n",
    // which the header parser trims as whitespace around the entry.
    let headers = config.telemetry.otlp_headers.unwrap();
    assert_eq!(
        headers.0,
        [("authorization".to_owned(), "Bearer t0ken".to_owned())]
    );
    assert_eq!(read(Path::new(&password)).unwrap(), SECRET);
}

#[test]
fn secret_files_must_be_private_present_and_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let open = secret_file(dir.path(), "open", SECRET, 0o640);
    let empty = secret_file(dir.path(), "empty", "\n", 0o600);
    let missing = dir.path().join("missing").display().to_string();
    let cases = [
        (
            open.clone(),
            format!(
                "server.sasl.password_file: \"{open}\" may be read or written by group or others (mode 640); make it private with: chmod 600 \"{open}\""
            ),
        ),
        (
            empty.clone(),
            format!("server.sasl.password_file: \"{empty}\" is empty"),
        ),
        (
            missing.clone(),
            format!(
                "server.sasl.password_file: cannot read \"{missing}\": No such file or directory (os error 2)"
            ),
        ),
        (
            dir.path().display().to_string(),
            format!(
                "server.sasl.password_file: \"{}\" is not a regular file",
                dir.path().display()
            ),
        ),
    ];
    for (path, want) in cases {
        let yaml = format!("server: {{sasl: {{username: bot, password_file: '{path}'}}}}\n");
        let errors = errors_with(&yaml, &env());
        assert_eq!(errors, [want]);
        assert_no_secret(&errors);
    }
}

#[test]
fn a_key_and_its_file_together_are_an_error() {
    let yaml = format!(
        "server: {{sasl: {{username: bot, password: '{SECRET}', password_file: /x}}}}\n\
         webhooks: {{url: 'https://h.test/{SECRET}', url_file: /x}}\n\
         telemetry: {{otlp_headers: 'a={SECRET}', otlp_headers_file: /x}}\n"
    );
    let errors = errors_with(&yaml, &env());
    assert_eq!(
        errors,
        [
            "server.sasl.password_file: give either password or password_file, not both",
            "webhooks.url_file: give either url or url_file, not both",
            "telemetry.otlp_headers_file: give either otlp_headers or otlp_headers_file, not both",
        ]
    );
}

#[test]
fn a_file_still_satisfies_the_both_or_neither_rule() {
    let errors = errors_with("server: {sasl: {username: bot, password: ~}}\n", &env());
    assert_eq!(errors, ["server.sasl.password: must be a string"]);
    let errors = errors_with("server: {sasl: {password_file: /x}}\n", &env());
    assert_eq!(
        errors[0],
        "server.sasl: needs both username and password (missing username)"
    );
}

#[test]
fn values_from_outside_are_checked_without_being_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let two_lines = secret_file(dir.path(), "pw", &format!("{SECRET}\n{SECRET}\n"), 0o600);
    let yaml = format!(
        "server: {{sasl: {{username: bot, password_file: '{two_lines}'}}}}\n\
         webhooks: {{url: '${{HOOK}}'}}\n\
         telemetry: {{otlp_headers: '${{HEADERS}}'}}\n"
    );
    let env = with(&[("HOOK", SECRET), ("HEADERS", SECRET)]);
    let errors = errors_with(&yaml, &env);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("server.sasl.password_file: "),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("webhooks.url: "), "{errors:?}");
    assert_eq!(
        errors[2],
        "telemetry.otlp_headers: entry 1 is not name=value"
    );
    assert_no_secret(&errors);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let yaml = "server: {sasl: {username: bot, password: '${PW}'}}\n\
                telemetry: {otlp_headers: 'authorization=${PW}'}\n";
    let config = parse(yaml, &with(&[("PW", SECRET)])).unwrap().config;
    let shown = format!("{:?} {:?}", config.server, config.telemetry);
    assert!(!shown.contains(SECRET), "{shown}");
}
