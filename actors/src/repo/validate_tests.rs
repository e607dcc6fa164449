use super::*;

#[test]
fn remotes_of_the_three_forms_are_accepted_and_others_refused() {
    let accepted = [
        "https://github.com/AgentCulture/codexd.git",
        "https://git@example.com/a/b",
        "git@github.com:AgentCulture/codex-guide.git",
        "git@127.0.0.1:repo",
        "/srv/git/project.git",
    ];
    for text in accepted {
        assert_eq!(remote(text).map(|r| r.as_str().to_owned()), Ok(text.into()));
    }
    let refused = [
        ("", REMOTE_FORM),
        ("http://example.com/a.git", REMOTE_FORM),
        ("https://example.com", REMOTE_FORM),
        ("https://example.com/", REMOTE_FORM),
        ("ext::sh -c touch% /tmp/pwned", REMOTE_FORM),
        ("file:///srv/git/a.git", REMOTE_FORM),
        ("relative/path", REMOTE_FORM),
        ("-uhttps://example.com/a", REMOTE_FORM),
        ("--upload-pack=touch /tmp/x", REMOTE_FORM),
        ("git@host:path with space", REMOTE_FORM),
        ("git@host:", REMOTE_FORM),
        ("git@-oProxyCommand=x:a", REMOTE_FORM),
        ("https://example.com/a b", REMOTE_FORM),
        ("https://user:ghp_secret@github.com/a/b.git", REMOTE_SECRET),
        ("/srv/git/a\nb", REMOTE_FORM),
    ];
    for (text, want) in refused {
        assert_eq!(remote(text), Err(want.to_owned()), "{text:?}");
    }
}

#[test]
fn a_remote_is_shown_without_credentials() {
    let remote = remote("https://ori@example.com/a/b.git?x=1").expect("valid");
    assert_eq!(remote.shown(), "https://example.com/a/b.git");
    assert_eq!(format!("{remote:?}"), "Remote(https://example.com/a/b.git)");
    assert!(!remote.is_path());
}

#[test]
fn branch_names_follow_upstream_and_git_ref_rules() {
    for good in [
        "main",
        "fix/readme",
        "codexd-1.2",
        "a_b",
        "9lives",
        "feature/x-y.z",
    ] {
        assert_eq!(branch(good).map(|b| b.to_string()), Ok(good.to_owned()));
    }
    let table = [
        ("", BRANCH_BLANK.to_owned()),
        (" main", BRANCH_BLANK.to_owned()),
        ("main\n", BRANCH_BLANK.to_owned()),
        ("-x", "unsafe branch name: '-x'".to_owned()),
        (
            "--upload-pack=x",
            "unsafe branch name: '--upload-pack=x'".to_owned(),
        ),
        ("a..b", "unsafe branch name: 'a..b'".to_owned()),
        ("/a", "unsafe branch name: '/a'".to_owned()),
        ("a/", "unsafe branch name: 'a/'".to_owned()),
        ("a//b", "unsafe branch name: 'a//b'".to_owned()),
        ("x.lock", "unsafe branch name: 'x.lock'".to_owned()),
        ("a/.hidden", "unsafe branch name: 'a/.hidden'".to_owned()),
        ("end.", "unsafe branch name: 'end.'".to_owned()),
        ("a b", "unsafe branch name: 'a b'".to_owned()),
        ("a@{1}", "unsafe branch name: 'a@{1}'".to_owned()),
        ("it's", "unsafe branch name: \"it's\"".to_owned()),
        ("a\tb", "unsafe branch name: 'a\\tb'".to_owned()),
        ("HEAD~1", "unsafe branch name: 'HEAD~1'".to_owned()),
    ];
    for (text, want) in table {
        assert_eq!(branch(text), Err(want), "{text:?}");
    }
}

#[test]
fn base_refs_are_refs_never_options() {
    for good in [
        "origin/main",
        "main",
        "v1.2",
        "HEAD~1",
        "origin/main^",
        "0123abcd",
    ] {
        assert_eq!(
            base_ref(good).map(|r| r.as_str().to_owned()),
            Ok(good.to_owned())
        );
    }
    let table = [
        ("", BASE_BLANK.to_owned()),
        (" x", BASE_BLANK.to_owned()),
        ("-x", "unsafe base ref: '-x'".to_owned()),
        (
            "--upload-pack=touch /tmp/pwned",
            "unsafe base ref: '--upload-pack=touch /tmp/pwned'".to_owned(),
        ),
        ("main..evil", "unsafe base ref: 'main..evil'".to_owned()),
        ("a:b", "unsafe base ref: 'a:b'".to_owned()),
        ("@{-1}", "unsafe base ref: '@{-1}'".to_owned()),
    ];
    for (text, want) in table {
        assert_eq!(base_ref(text), Err(want), "{text:?}");
    }
}

#[test]
fn checkout_names_are_derived_like_upstream() {
    let table = [
        ("https://github.com/AgentCulture/codexd.git", Ok("codexd")),
        (
            "git@github.com:AgentCulture/codex-guide.git",
            Ok("codex-guide"),
        ),
        ("git@host:repo", Ok("repo")),
        ("/srv/git/My Repo.git/", Ok("my-repo")),
        ("/srv/git/_.weird-_.git", Ok("weird")),
        ("/srv/git/.git", Err(NO_NAME)),
        ("git@host:.git", Err(NO_NAME)),
    ];
    for (text, want) in table {
        let remote = Remote(text.to_owned());
        assert_eq!(
            checkout_name(&remote),
            want.map(str::to_owned).map_err(str::to_owned),
            "{text}"
        );
    }
}

#[test]
fn the_commit_subject_is_the_first_line_trimmed_to_64_chars() {
    let long = "é".repeat(70);
    let table = [
        ("Fix the README", "codexd: Fix the README".to_owned()),
        (
            "\n  Add a test  \nthen more",
            "codexd: Add a test".to_owned(),
        ),
        (long.as_str(), format!("codexd: {}", "é".repeat(64))),
        ("bell\u{7} here", "codexd: bell here".to_owned()),
    ];
    for (task, want) in table {
        assert_eq!(commit_subject(task), want, "{task:?}");
    }
    assert_eq!(task("  \n "), Err(TASK_BLANK.to_owned()));
    assert_eq!(task("do it"), Ok("do it".to_owned()));
}
