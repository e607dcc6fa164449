//! Gauges you can alert on, read from the same tree `codexd status --json` shows: exported
//! as OTLP observable gauges of the `codexd` meter, only while metrics are exported.
//!
//! ```text
//! init: Gauges::register(&meter, interval)   // instruments whose callbacks read a snapshot
//! run:  gauges.start(host.clone())           // a task refreshes the snapshot from Host::status()
//! ```
//!
//! Observable-gauge callbacks are synchronous and run on the SDK's export thread, so they
//! never ask the tree: they read the snapshot a task refreshes once per metric export
//! interval. A gauge is therefore at most one interval older than its export. When the tree
//! does not answer, the snapshot is emptied (the gauges report nothing) until it does.
//! The `snapshot` module says which part of the tree each gauge reads.
//!
//! | gauge                    | unit        | attributes                               |
//! |--------------------------|-------------|------------------------------------------|
//! | `codexd.agent.up`        | —           | `agent.nick`                             |
//! | `codexd.irc.connected`   | —           | `agent.nick`                             |
//! | `codexd.agent.paused`    | —           | `agent.nick`, `reason`                   |
//! | `codexd.journal.pending` | `{entry}`   | `agent.nick`                             |
//! | `codexd.turns.in_flight` | `{turn}`    | `agent.nick`                             |
//! | `codexd.circuits.open`   | —           | `supervisor`, `child`, `agent.nick`?     |
//! | `codexd.codex.processes` | `{process}` | `state`                                  |
//! | `codexd.codex.threads`   | `{thread}`  | `codex.process`                          |
//! | `codexd.webhook.queue`   | `{delivery}`| `agent.nick`                             |

mod snapshot;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use codexd_actors::host::Host;
use opentelemetry::metrics::Meter;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

pub(crate) use snapshot::Snapshot;

/// Every gauge: name, unit (empty: none) and description.
pub const GAUGES: [(&str, &str, &str); 9] = [
    (
        "codexd.agent.up",
        "",
        "1 while the agent's subtree is running, else 0",
    ),
    (
        "codexd.irc.connected",
        "",
        "1 while the agent's IRC connection is registered, else 0",
    ),
    (
        "codexd.agent.paused",
        "",
        "1 for the reason the agent is paused (manual, turn_failures, escalation, sleep), 0 for the others",
    ),
    (
        "codexd.journal.pending",
        "{entry}",
        "Journal entries waiting or running",
    ),
    ("codexd.turns.in_flight", "{turn}", "Codex turns running"),
    (
        "codexd.circuits.open",
        "",
        "1 while the child's circuit is open or half-open, else 0",
    ),
    (
        "codexd.codex.processes",
        "{process}",
        "Codex processes by supervision state",
    ),
    (
        "codexd.codex.threads",
        "{thread}",
        "Codex threads routed to the process",
    ),
    (
        "codexd.webhook.queue",
        "{delivery}",
        "Webhook HTTP deliveries waiting",
    ),
];

/// The gauges' shared snapshot and how often it is refreshed. Clones share the snapshot.
#[derive(Debug, Clone)]
pub struct Gauges {
    snapshot: Arc<Mutex<Snapshot>>,
    interval: Duration,
}

/// The refresh task; stopped when dropped.
#[derive(Debug)]
#[must_use = "the gauges stop refreshing when this is dropped"]
pub struct GaugeRefresh(JoinHandle<()>);

impl Drop for GaugeRefresh {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Gauges {
    /// Registers every gauge on `meter` (callbacks read the snapshot, empty until
    /// [`Gauges::start`] fills it) and keeps `interval` as the refresh period. Calling it
    /// again on another meter (a rebuilt provider) registers the same snapshot there.
    pub fn register(meter: &Meter, interval: Duration) -> Gauges {
        let gauges = Gauges {
            snapshot: Arc::default(),
            interval,
        };
        gauges.register_on(meter);
        gauges
    }

    /// Registers this snapshot's gauges on `meter`.
    pub fn register_on(&self, meter: &Meter) {
        for (name, unit, description) in GAUGES {
            let snapshot = self.snapshot.clone();
            let builder = meter
                .u64_observable_gauge(name)
                .with_description(description)
                .with_callback(move |observer| {
                    for point in lock(&snapshot).points(name) {
                        observer.observe(point.value, &point.attributes);
                    }
                });
            let builder = match unit {
                "" => builder,
                unit => builder.with_unit(unit),
            };
            builder.build();
        }
    }

    /// Refreshes the snapshot from `host` now and then every interval, until the returned
    /// handle is dropped. Call inside a tokio runtime.
    pub fn start(&self, host: Host) -> GaugeRefresh {
        let snapshot = self.snapshot.clone();
        let interval = self.interval;
        GaugeRefresh(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut answering = true;
            loop {
                ticks.tick().await;
                let fresh = match host.status().await {
                    Ok(status) => {
                        if !answering {
                            tracing::info!("gauges: the supervision tree answers again");
                        }
                        answering = true;
                        Snapshot::of(&status)
                    }
                    Err(error) => {
                        if answering {
                            tracing::warn!(error = %error, "gauges: the supervision tree did not answer; gauges report nothing until it does");
                        }
                        answering = false;
                        Snapshot::default()
                    }
                };
                *lock(&snapshot) = fresh;
            }
        }))
    }
}

/// The snapshot, even if a callback panicked while holding it.
fn lock(snapshot: &Mutex<Snapshot>) -> MutexGuard<'_, Snapshot> {
    snapshot
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    use super::*;

    /// The snapshot reaches an exporter through the callbacks: every gauge name, each point
    /// with its attributes.
    #[test]
    fn callbacks_export_the_snapshot() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let gauges = Gauges::register(&provider.meter("codexd"), Duration::from_secs(60));
        let status = serde_json::json!({
            "agents": [{"nick": "spark-a", "name": "spark-a", "state": "running", "restarts": 0,
                        "circuit": "closed", "last_error": null, "actor_id": null, "uptime_s": 1.0}],
            "services": [],
        });
        *lock(&gauges.snapshot) = Snapshot::of(&serde_json::from_value(status).expect("tree"));
        provider.force_flush().expect("flush");
        let exported = exporter.get_finished_metrics().expect("metrics");
        let mut found = Vec::new();
        for metric in exported
            .iter()
            .flat_map(|r| r.scope_metrics())
            .flat_map(|s| s.metrics())
        {
            let AggregatedMetrics::U64(MetricData::Gauge(gauge)) = metric.data() else {
                panic!("{} is not a u64 gauge", metric.name());
            };
            for point in gauge.data_points() {
                let nick = point
                    .attributes()
                    .find(|kv| kv.key.as_str() == "agent.nick");
                found.push((
                    metric.name().to_owned(),
                    nick.map(|kv| kv.value.to_string()),
                    point.value(),
                ));
            }
        }
        found.sort();
        let want = [
            ("codexd.agent.up", Some("spark-a"), 1),
            ("codexd.circuits.open", Some("spark-a"), 0),
        ];
        let want: Vec<(String, Option<String>, u64)> = want
            .iter()
            .map(|(n, a, v)| ((*n).to_owned(), a.map(str::to_owned), *v))
            .collect();
        assert_eq!(found, want);
        let _ = provider.shutdown();
    }
}
