use super::*;

#[test]
fn the_workspace_must_be_under_the_current_directory() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let cwd = scratch.path().join("proj");
    std::fs::create_dir_all(cwd.join(".git")).expect("mkdir");
    let cwd = resolve(&cwd);
    let home = resolve(scratch.path());
    let root = |given: Option<&str>| managed_root(&cwd, Some(&home), given.map(Path::new));
    assert_eq!(root(None), Ok(cwd.join(".codexd/work")));
    assert_eq!(root(Some("w/../x")), Ok(cwd.join("x")));
    let table = [
        (".", AT_ROOT),
        ("w/..", AT_ROOT),
        ("..", AT_HOME),
        ("/tmp/elsewhere", OUTSIDE),
        ("../other", OUTSIDE),
        (".git", IN_GIT_DIR),
        (".git/work", IN_GIT_DIR),
    ];
    for (given, want) in table {
        assert_eq!(root(Some(given)), Err(want.to_owned()), "{given}");
    }
    let absolute = cwd.join("abs");
    assert_eq!(
        managed_root(&cwd, None, Some(&absolute)),
        Ok(absolute.clone())
    );
}

#[test]
fn a_symlink_out_of_the_directory_is_outside() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let cwd = scratch.path().join("proj");
    let away = scratch.path().join("away");
    std::fs::create_dir_all(&cwd).expect("mkdir");
    std::fs::create_dir_all(&away).expect("mkdir");
    std::os::unix::fs::symlink(&away, cwd.join("link")).expect("symlink");
    assert_eq!(
        managed_root(&cwd, None, Some(Path::new("link/work"))),
        Err(OUTSIDE.to_owned())
    );
}

#[test]
fn only_a_marked_or_empty_directory_is_wiped() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = scratch.path().join("work");
    prepare(&root).expect("made");
    assert!(root.join(MARKER).is_file());
    std::fs::write(root.join("old"), "x").expect("write");
    prepare(&root).expect("wiped");
    assert!(!root.join("old").exists(), "emptied");
    assert!(root.join(MARKER).is_file(), "marked again");

    let foreign = scratch.path().join("src");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    std::fs::write(foreign.join("main.rs"), "fn main() {}").expect("write");
    let error = prepare(&foreign).expect_err("refused");
    assert!(
        error.to_string().contains("is not a codexd workspace"),
        "{error}"
    );
    assert!(foreign.join("main.rs").is_file(), "nothing deleted");

    let empty = scratch.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    prepare(&empty).expect("an empty directory is fine");
}

#[test]
fn the_checkout_is_the_one_git_directory_of_the_workspace() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = scratch.path();
    assert!(
        find_checkout(root)
            .expect_err("none")
            .starts_with("no checkout in")
    );
    std::fs::create_dir_all(root.join("repo/.git")).expect("mkdir");
    std::fs::create_dir_all(root.join("notes")).expect("mkdir");
    assert_eq!(find_checkout(root), Ok(root.join("repo")));
    std::fs::create_dir_all(root.join("other/.git")).expect("mkdir");
    assert!(
        find_checkout(root)
            .expect_err("two")
            .starts_with("2 checkouts")
    );
}
