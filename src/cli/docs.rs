//! What is generated from the command line's definition ([`super::Cli`]): shell completion
//! scripts (`codexd completions <shell>`) and the man page (`codexd man`), so neither can
//! fall behind a new command.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Writes `shell`'s completion script for `codexd`.
pub fn completions(shell: Shell, out: &mut impl Write) {
    clap_complete::generate(shell, &mut Cli::command(), "codexd", out);
}

/// Writes the man page, `codexd(1)` in roff: every command with its summary, every option.
pub fn man_page(out: &mut impl Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client commands every generated text must know.
    const VERBS: [&str; 8] = [
        "status", "pause", "resume", "say", "whisper", "watch", "reset", "fault",
    ];

    #[test]
    fn completions_know_every_command_in_each_shell() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let script = String::from_utf8(out).expect("utf-8");
            for verb in VERBS.iter().chain(&["--check", "completions", "man"]) {
                assert!(script.contains(verb), "{shell}: {verb} missing");
            }
        }
    }

    #[test]
    fn the_man_page_is_roff_listing_every_command() {
        let mut out = Vec::new();
        man_page(&mut out).expect("renders");
        let page = String::from_utf8(out).expect("utf-8");
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq"),
            "roff: {}",
            &page[..40]
        );
        assert!(page.contains(".TH codexd 1"), "title");
        for verb in VERBS {
            assert!(
                page.contains(&format!("codexd\\-{verb}(1)")),
                "{verb} missing"
            );
        }
    }
}
