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
