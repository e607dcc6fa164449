use super::Caller;

fn within(conversations: &[&str]) -> Caller {
    Caller::Within(conversations.iter().map(|c| (*c).to_owned()).collect())
}

#[test]
fn a_dm_is_read_only_from_its_own_conversation() {
    let cases = [
        (Caller::Anyone, "DM:ori", true),
        (within(&["DM:ori"]), "DM:ori", true),
        (within(&["DM:ori"]), "dm:ORI", true),
        (within(&["#dev"]), "DM:ori", false),
        (within(&["#dev"]), "dm:ori", false),
        (within(&[]), "DM:ori", false),
        (within(&["#dev", "DM:ori"]), "DM:ori", true),
        (within(&["#dev"]), "#ops", true),
        (within(&[]), "#ops", true),
    ];
    for (caller, key, expected) in cases {
        assert_eq!(caller.may_read(key), expected, "{caller:?} reading {key}");
    }
}

#[test]
fn from_codex_only_a_running_turns_conversation_is_compacted_or_cleared() {
    assert_eq!(Caller::Anyone.conversation(None), Ok(None), "every one");
    assert_eq!(
        Caller::Anyone.conversation(Some("DM:ori".into())),
        Ok(Some("DM:ori".into()))
    );
    assert_eq!(
        within(&["#dev"]).conversation(None),
        Ok(Some("#dev".into()))
    );
    assert_eq!(
        within(&["#dev"]).conversation(Some("#dev".into())),
        Ok(Some("#dev".into()))
    );
    let refused = [
        within(&["#dev"]).conversation(Some("DM:ori".into())),
        within(&["#dev", "#ops"]).conversation(None),
        within(&[]).conversation(None),
    ];
    for result in refused {
        let error = result.unwrap_err();
        assert!(error.contains("compacts or clears only"), "{error}");
    }
}
