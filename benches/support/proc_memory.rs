//! What a process holds in memory, read from `/proc`: its own VmRSS, VmHWM, Pss and thread
//! count, and the same summed over its direct children (for the daemon: the agents' codex
//! processes). Linux only; values in KiB as the kernel reports them.

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One process's memory, in KiB.
#[derive(Clone, Copy)]
pub(crate) struct Memory {
    pub(crate) rss: u64,
    pub(crate) hwm: u64,
    pub(crate) pss: u64,
    pub(crate) threads: u64,
}

impl Memory {
    /// From `/proc/<pid>/status` and `/proc/<pid>/smaps_rollup`.
    pub(crate) fn of(pid: u32) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
        let field = |text: &str, name: &str| {
            number_field(text, name).ok_or(format!("no {name} for process {pid}"))
        };
        Ok(Memory {
            rss: field(&status, "VmRSS:")?,
            hwm: field(&status, "VmHWM:")?,
            pss: field(&rollup, "Pss:")?,
            threads: field(&status, "Threads:")?,
        })
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS {} KiB ({}), VmHWM {} KiB ({}), Pss {} KiB ({}), {} threads",
            self.rss,
            mib(self.rss),
            self.hwm,
            mib(self.hwm),
            self.pss,
            mib(self.pss),
            self.threads
        )
    }
}

/// A process's direct children and their summed memory.
pub(crate) struct Children {
    pub(crate) pids: Vec<u32>,
    pub(crate) rss: u64,
    pub(crate) pss: u64,
}

impl Children {
    /// Scans `/proc/*/stat` for processes whose parent is `pid`.
    pub(crate) fn of(pid: u32) -> Result<Children> {
        let mut children = Children {
            pids: Vec::new(),
            rss: 0,
            pss: 0,
        };
        for entry in std::fs::read_dir("/proc")? {
            let Some(child) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if parent_of(child) != Some(pid) {
                continue;
            }
            // A child that exited since the scan began is not counted.
            let Ok(memory) = Memory::of(child) else {
                continue;
            };
            children.pids.push(child);
            children.rss += memory.rss;
            children.pss += memory.pss;
        }
        Ok(children)
    }
}

impl std::fmt::Display for Children {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS sum {} KiB ({}), Pss sum {} KiB ({})",
            self.rss,
            mib(self.rss),
            self.pss,
            mib(self.pss)
        )
    }
}

/// The parent pid in `/proc/<pid>/stat`: the second field after the `)` closing the name.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// The number in a `Name:   1234 kB` line.
fn number_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// KiB as MiB, e.g. `12.3 MiB`.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
