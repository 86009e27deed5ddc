//! Who published a version and when, read from the upstream packument, for the
//! scanner's risk layer (`airlock_scanner::PublicationContext`): a capability plus a
//! weak identity (a package days old, its first version, a new publisher, provenance
//! that earlier versions had and this one lacks) is what makes a hold.
//!
//! Every field is `None` when the packument does not say, and unknown never counts as
//! a signal.

use airlock_scanner::PublicationContext;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::packument::Document;

/// What a version's manifest says about who published it. A manifest whose fields
/// have another shape (old packuments list maintainers as strings) yields unknown.
#[derive(Debug, Deserialize)]
struct PublisherFacts {
    #[serde(rename = "_npmUser")]
    npm_user: Option<Person>,
    maintainers: Option<Vec<Person>>,
    dist: Option<DistFacts>,
}

#[derive(Debug, Deserialize)]
struct Person {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DistFacts {
    attestations: Option<IgnoredAny>,
}

fn publisher_facts(document: &Document<'_>, version: &str) -> Option<PublisherFacts> {
    serde_json::from_str(document.manifest(version)?.get()).ok()
}

/// The version published last before `published`, by the packument's `time`.
fn previous_version<'a>(document: &'a Document<'_>, published: DateTime<Utc>) -> Option<&'a str> {
    document
        .times()
        .filter(|(key, _)| *key != "created" && *key != "modified")
        .filter(|(_, time)| *time < published)
        .max_by_key(|(_, time)| *time)
        .map(|(key, _)| key)
}

/// The publication context of `version` in an upstream packument.
pub fn publication_context(document: &Document<'_>, version: &str) -> PublicationContext {
    let Some(published) = document.published(version) else { return PublicationContext::default() };
    let package_age_days = document
        .published("created")
        .map(|created| u32::try_from((published - created).num_days().max(0)).unwrap_or(u32::MAX));
    let previous = previous_version(document, published);
    let current = publisher_facts(document, version);
    let previous_facts = previous.and_then(|previous| publisher_facts(document, previous));
    let maintainer_changed = match (&current, &previous_facts) {
        (Some(current), Some(previous)) => {
            let publisher = current.npm_user.as_ref().and_then(|user| user.name.as_deref());
            let maintainers: Vec<&str> =
                previous.maintainers.iter().flatten().filter_map(|person| person.name.as_deref()).collect();
            match publisher {
                Some(publisher) if !maintainers.is_empty() => Some(!maintainers.contains(&publisher)),
                _ => None,
            }
        }
        _ => None,
    };
    let has_provenance = |facts: &PublisherFacts| facts.dist.as_ref().is_some_and(|dist| dist.attestations.is_some());
    let provenance_dropped = match (&current, &previous_facts) {
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
    use crate::npm::PackageName;

    fn context_of(mut json: serde_json::Value, version: &str) -> PublicationContext {
        json["name"] = "demo".into();
        let bytes = serde_json::to_vec(&json).unwrap();
        let name = PackageName::parse("demo").unwrap();
        let document = crate::packument::parse_upstream(&name, &bytes).unwrap();
        publication_context(&document, version)
    }

    #[test]
    fn a_new_package_s_first_version() {
        let packument = serde_json::json!({
            "time": {"created": "2025-09-01T00:00:00Z", "1.0.0": "2025-09-03T00:00:00Z"},
            "versions": {"1.0.0": {}}
        });
        let context = context_of(packument, "1.0.0");
        assert_eq!(context.package_age_days, Some(2));
        assert_eq!(context.first_version, Some(true));
        assert_eq!(context.maintainer_changed, None);
    }

    #[test]
    fn a_new_publisher_without_the_provenance_earlier_versions_had() {
        let packument = serde_json::json!({
            "time": {"created": "2020-01-01T00:00:00Z", "1.0.0": "2020-01-01T00:00:00Z", "1.0.1": "2024-05-01T00:00:00Z"},
            "versions": {
                "1.0.0": {"maintainers": [{"name": "owner"}], "dist": {"attestations": {"url": "x"}}},
                "1.0.1": {"_npmUser": {"name": "someone-else"}, "dist": {}}
            }
        });
        let context = context_of(packument, "1.0.1");
        assert_eq!(context.first_version, Some(false));
        assert_eq!(context.maintainer_changed, Some(true));
        assert_eq!(context.provenance_dropped, Some(true));
        assert!(context.package_age_days.is_some_and(|days| days > 1000));
    }

    #[test]
    fn an_unknown_version_has_an_unknown_context() {
        let packument = serde_json::json!({"versions": {}});
        assert_eq!(context_of(packument, "9.9.9"), PublicationContext::default());
    }
}
