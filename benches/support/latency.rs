//! Latency figures for the benches: nearest-rank percentiles and the mean, in ms.

#![allow(dead_code)]

/// Nearest-rank percentiles and the mean of latencies in ms.
pub(crate) struct Stats {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
    pub(crate) count: usize,
}

impl Stats {
    /// Sorts `latencies`.
    pub(crate) fn of(latencies: &mut [f64]) -> Stats {
        latencies.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p * latencies.len() as f64).ceil() as usize).max(1) - 1;
            latencies.get(index).copied().unwrap_or_default()
        };
        Stats {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
            mean: latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
            count: latencies.len(),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n {}, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms",
            self.count, self.p50, self.p90, self.p99, self.max, self.mean
        )
    }
}

/// A bench's error.
pub(crate) type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// A bench's `main`: `run(rounds)` on a 2-worker runtime, `rounds` from `$var` (else
/// `default`); any failure it reports makes the bench exit non-zero (the figures are
/// meaningless then).
pub(crate) fn main_rounds<F, Fut>(var: &str, default: usize, run: F) -> Result<(), BenchError>
where
    F: FnOnce(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, BenchError>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rounds: usize = std::env::var(var)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    let failures = runtime.block_on(run(rounds))?;
    if failures.is_empty() {
        return Ok(());
    }
    eprintln!("{} failures:", failures.len());
    for failure in &failures {
        eprintln!("  {failure}");
    }
    Err(format!("{} failures: the figures are meaningless", failures.len()).into())
}
