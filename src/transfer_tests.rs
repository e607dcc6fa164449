use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

const THREAD: &str = "01a1fe2b-4c00-7a80-b33f-6cf937d51fcf";
const ROLLOUT: &str =
    "sessions/2026/11/21/rollout-2026-11-21T10-00-00-01a1fe2b-4c00-7a80-b33f-6cf937d51fcf.jsonl";

/// A host: `state/<nick>/` with a thread book, a journal entry and a `.tmp` leftover, and
/// a CODEX_HOME with the thread's rollout and another thread's.
fn host(root: &Path, nick: &str) -> (PathBuf, PathBuf) {
    let state = root.join("state");
    let agent = state.join(nick);
    fs::create_dir_all(agent.join("journal")).unwrap();
    fs::write(
        agent.join("threads.json"),
        format!(r##"{{"last":"#general","threads":{{"#general":{{"thread":"{THREAD}","tools":"v1"}}}}}}"##),
    )
    .unwrap();
    fs::write(agent.join("journal/00000000000000000007.json"), "{}").unwrap();
    fs::write(agent.join("journal/00000000000000000008.json.tmp"), "half").unwrap();
    fs::write(agent.join("channels"), "#general\n").unwrap();
    let codex = root.join("codex");
    let rollout = codex.join(ROLLOUT);
    fs::create_dir_all(rollout.parent().unwrap()).unwrap();
    fs::write(&rollout, "{\"history\":1}\n").unwrap();
    fs::write(rollout.with_file_name("rollout-x-other.jsonl"), "other").unwrap();
    (state, codex)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_exported_agent_is_imported_under_a_new_nick_with_its_threads_and_rollouts() {
    let tmp = tempfile::tempdir().unwrap();
    let (state, codex) = host(&tmp.path().join("a"), "spark-a");
    let bundle = tmp.path().join("bundle");
    let manifest = export(&state, "spark-a", "spark", &codex, &bundle).unwrap();
    assert_eq!(manifest.nick, "spark-a");
    assert_eq!(manifest.server, "spark");
    assert_eq!(
        manifest.threads,
        vec![ThreadEntry {
            key: "#general".into(),
            thread: THREAD.into(),
            rollout: Some(ROLLOUT.into()),
        }]
    );
    assert!(
        !bundle
            .join("codex/sessions/2026/11/21/rollout-x-other.jsonl")
            .exists()
    );
    assert!(
        !bundle
            .join("state/journal/00000000000000000008.json.tmp")
            .exists()
    );
    assert_eq!(mode(&bundle.join("manifest.json")), 0o600);
    assert_eq!(mode(&bundle.join("state/journal")), 0o700);

    let other = tmp.path().join("b");
    let (state_b, codex_b) = (other.join("state"), other.join("codex"));
    import(&bundle, &state_b, "other-a", &codex_b).unwrap();
    let agent = state_b.join("other-a");
    assert!(
        fs::read_to_string(agent.join("threads.json"))
            .unwrap()
            .contains(THREAD)
    );
    assert!(agent.join("journal/00000000000000000007.json").exists());
    assert_eq!(
        fs::read_to_string(agent.join("channels")).unwrap(),
        "#general\n"
    );
    assert_eq!(
        fs::read_to_string(codex_b.join(ROLLOUT)).unwrap(),
        "{\"history\":1}\n"
    );
    for path in [agent.join("threads.json"), codex_b.join(ROLLOUT)] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    for path in [agent.clone(), codex_b.join("sessions/2026/11/21")] {
        assert_eq!(mode(&path), 0o700, "{}", path.display());
    }

    let again = import(&bundle, &state_b, "other-a", &codex_b).unwrap_err();
    assert!(matches!(again, TransferError::Exists { .. }), "{again}");
}

#[test]
fn an_export_needs_state_and_a_new_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (state, codex) = host(tmp.path(), "spark-a");
    let error = export(&state, "spark-b", "spark", &codex, &tmp.path().join("x")).unwrap_err();
    assert!(
        error.to_string().contains("agent 'spark-b' has no state"),
        "{error}"
    );
    let error = export(&state, "spark-a", "spark", &codex, tmp.path()).unwrap_err();
    assert!(matches!(error, TransferError::Exists { .. }), "{error}");
}

#[test]
fn an_import_refuses_a_bad_bundle_and_a_rollout_with_other_content() {
    let tmp = tempfile::tempdir().unwrap();
    let (state, codex) = host(&tmp.path().join("a"), "spark-a");
    let bundle = tmp.path().join("bundle");
    export(&state, "spark-a", "spark", &codex, &bundle).unwrap();

    let state_b = tmp.path().join("b/state");
    let codex_b = tmp.path().join("b/codex");
    fs::create_dir_all(codex_b.join(ROLLOUT).parent().unwrap()).unwrap();
    fs::write(codex_b.join(ROLLOUT), "another history").unwrap();
    let error = import(&bundle, &state_b, "other-a", &codex_b).unwrap_err();
    assert!(
        matches!(error, TransferError::RolloutClash { .. }),
        "{error}"
    );
    assert!(!state_b.join("other-a").exists(), "nothing written");

    let manifest = bundle.join("manifest.json");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::remove_file(&manifest).unwrap();
    fs::write(&manifest, text.replace(ROLLOUT, "../../etc/passwd")).unwrap();
    let error = import(&bundle, &state_b, "other-a", &codex_b).unwrap_err();
    assert!(error.to_string().contains("leaves the bundle"), "{error}");

    let error = import(tmp.path(), &state_b, "other-a", &codex_b).unwrap_err();
    assert!(error.to_string().contains("not an agent bundle"), "{error}");
}

#[test]
fn a_manifest_path_must_stay_inside() {
    let cases = [
        ("sessions/2026/11/21/r.jsonl", true),
        ("../etc/passwd", false),
        ("sessions/../../x", false),
        ("/etc/passwd", false),
        ("./sessions/x", false),
        ("", false),
    ];
    for (path, inside) in cases {
        assert_eq!(stays_inside(path), inside, "{path}");
    }
}
