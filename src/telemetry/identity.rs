//! Who is exporting: the resource attributes that name this process and its machine.
//!
//! | attribute             | value                                                  | stable across restarts |
//! |-----------------------|--------------------------------------------------------|------------------------|
//! | `service.instance.id` | [`instance_id`]: a random UUID v4, new in every process | no (unique per process) |
//! | `host.name`           | [`host_name`]: the kernel's node name (`uname -n`)      | yes                    |
//!
//! `OTEL_RESOURCE_ATTRIBUTES` overrides either (see `settings::resolve` and [`add_host_name`]).

use opentelemetry_semantic_conventions::resource::HOST_NAME;

use super::Settings;

/// A random UUID v4 (RFC 9562), e.g. `0f8e63d4-6b1a-4c2e-9a55-3d2f1e0b7c91`: the
/// `service.instance.id` of this process, so two daemons (or one daemon before and after a
/// restart) never share one.
pub fn instance_id() -> String {
    uuid_v4(fastrand::u128(..))
}

/// The UUID v4 text of 128 random bits: the version nibble set to 4, the variant to `10`.
fn uuid_v4(random: u128) -> String {
    let bits = (random & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The system's host name (`uname(2)` node name); `None` when it is empty.
pub fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().trim().to_owned();
    (!name.is_empty()).then_some(name)
}

/// Adds `host.name` to the resource unless `OTEL_RESOURCE_ATTRIBUTES` already set it.
pub fn add_host_name(settings: &mut Settings, host: Option<String>) {
    let (Some(otlp), Some(host)) = (settings.otlp.as_mut(), host) else {
        return;
    };
    otlp.resource.entry(HOST_NAME.to_owned()).or_insert(host);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_version_4_and_the_rfc_variant() {
        // (random bits, text)
        let table = [
            (0u128, "00000000-0000-4000-8000-000000000000"),
            (u128::MAX, "ffffffff-ffff-4fff-bfff-ffffffffffff"),
        ];
        for (random, want) in table {
            assert_eq!(uuid_v4(random), want);
        }
        let (a, b) = (instance_id(), instance_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "{a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn host_name_does_not_replace_one_from_the_environment() {
        use crate::config::TelemetryConfig;
        use crate::env::Env;
        let cfg = TelemetryConfig {
            enabled: true,
            ..TelemetryConfig::default()
        };
        let resolve = |env: &[(&str, &str)]| {
            let env = Env::from_pairs(env.iter().copied());
            let mut settings = Settings::resolve(&cfg, "id", &env).expect("resolves");
            add_host_name(&mut settings, Some("box-1".to_owned()));
            settings.otlp.expect("on").resource["host.name"].clone()
        };
        assert_eq!(resolve(&[]), "box-1");
        let env = [("OTEL_RESOURCE_ATTRIBUTES", "host.name=pod-7")];
        assert_eq!(resolve(&env), "pod-7");
        assert!(host_name().is_some_and(|name| !name.is_empty()));
    }
}
