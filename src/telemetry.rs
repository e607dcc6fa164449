//! TEMPORARY STUB (not committed)
use crate::config::TelemetryConfig;
use crate::env::Env;
use std::time::Duration;
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}
pub struct Settings;
impl Settings {
    pub fn resolve(_c: &TelemetryConfig, _i: &str, _e: &Env) -> Result<Settings, std::io::Error> {
        Ok(Settings)
    }
}
pub struct Telemetry;
impl Telemetry {
    pub fn shutdown(self, _t: Duration) {}
}
pub fn init(_s: &Settings, _f: LogFormat) -> Result<Telemetry, std::io::Error> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::from_default_env()
                .add_directive("info".parse().unwrap()),
        )
        .init();
    Ok(Telemetry)
}
