//! Who published a version and when, read from the upstream packument, for the
//! scanner's risk layer (`airlock_scanner::PublicationContext`): a capability plus a
//! weak identity (a package days old, its first version, a new publisher, provenance
//! that earlier versions had and this one lacks) is what makes a hold.
//!
//! Every field is `None` when the packument does not say, and unknown never counts as
//! a signal.

use airlock_scanner::PublicationContext;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

fn time_of(document: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    let text = document.get("time")?.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|time| time.with_timezone(&Utc))
}

/// The version published last before `version`, by the packument's `time`.
fn previous_version(document: &Map<String, Value>, published: DateTime<Utc>) -> Option<&str> {
    let times = document.get("time")?.as_object()?;
    times
        .iter()
        .filter(|(key, _)| *key != "created" && *key != "modified")
        .filter_map(|(key, value)| {
            let time = DateTime::parse_from_rfc3339(value.as_str()?).ok()?.with_timezone(&Utc);
            (time < published).then_some((time, key.as_str()))
        })
        .max()
        .map(|(_, key)| key)
}

fn manifest<'a>(document: &'a Map<String, Value>, version: &str) -> Option<&'a Value> {
    document.get("versions")?.get(version)
}

/// The publication context of `version` in an upstream packument document.
pub fn publication_context(document: &Map<String, Value>, version: &str) -> PublicationContext {
    let Some(published) = time_of(document, version) else { return PublicationContext::default() };
    let package_age_days = time_of(document, "created")
        .map(|created| u32::try_from((published - created).num_days().max(0)).unwrap_or(u32::MAX));
    let previous = previous_version(document, published);
    let current = manifest(document, version);
    let previous_manifest = previous.and_then(|previous| manifest(document, previous));
    let maintainer_changed = match (current, previous_manifest) {
        (Some(current), Some(previous)) => {
            let publisher = current.get("_npmUser").and_then(|user| user.get("name")).and_then(Value::as_str);
            let maintainers: Option<Vec<&str>> = previous.get("maintainers").and_then(Value::as_array).map(|list| {
                list.iter().filter_map(|maintainer| maintainer.get("name").and_then(Value::as_str)).collect()
            });
            match (publisher, maintainers) {
                (Some(publisher), Some(maintainers)) if !maintainers.is_empty() => {
                    Some(!maintainers.contains(&publisher))
                }
                _ => None,
            }
        }
        _ => None,
    };
    let has_provenance = |manifest: &Value| {
        manifest.get("dist").and_then(|dist| dist.get("attestations")).is_some_and(|value| !value.is_null())
    };
    let provenance_dropped = match (current, previous_manifest) {
        (Some(current), Some(previous)) => Some(has_provenance(previous) && !has_provenance(current)),
        _ => None,
    };
    PublicationContext {
        package_age_days,
        first_version: Some(previous.is_none()),
        maintainer_changed,
        provenance_dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn a_new_package_s_first_version() {
        let packument = document(serde_json::json!({
            "time": {"created": "2025-09-01T00:00:00Z", "1.0.0": "2025-09-03T00:00:00Z"},
            "versions": {"1.0.0": {}}
        }));
        let context = publication_context(&packument, "1.0.0");
        assert_eq!(context.package_age_days, Some(2));
        assert_eq!(context.first_version, Some(true));
        assert_eq!(context.maintainer_changed, None);
    }

    #[test]
    fn a_new_publisher_without_the_provenance_earlier_versions_had() {
        let packument = document(serde_json::json!({
            "time": {"created": "2020-01-01T00:00:00Z", "1.0.0": "2020-01-01T00:00:00Z", "1.0.1": "2024-05-01T00:00:00Z"},
            "versions": {
                "1.0.0": {"maintainers": [{"name": "owner"}], "dist": {"attestations": {"url": "x"}}},
                "1.0.1": {"_npmUser": {"name": "someone-else"}, "dist": {}}
            }
        }));
        let context = publication_context(&packument, "1.0.1");
        assert_eq!(context.first_version, Some(false));
        assert_eq!(context.maintainer_changed, Some(true));
        assert_eq!(context.provenance_dropped, Some(true));
        assert!(context.package_age_days.is_some_and(|days| days > 1000));
    }

    #[test]
    fn an_unknown_version_has_an_unknown_context() {
        let packument = document(serde_json::json!({"versions": {}}));
        assert_eq!(publication_context(&packument, "9.9.9"), PublicationContext::default());
    }
}
