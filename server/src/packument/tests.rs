//! Rendering rules: what is hidden, how tags move, what the abbreviated form keeps.

use super::*;
use crate::store::VersionState;
use chrono::{Datelike as _, TimeZone as _};
use serde_json::Value;

fn policy(cooling_hours: u64) -> Policy {
    let text = format!("[quarantine]\ncooling_period = \"{cooling_hours}h\"\n");
    let config = airlock_config::Config::from_toml("t", &text, airlock_config::Overrides::default()).unwrap();
    Policy::new(config.quarantine)
}

fn name(text: &str) -> PackageName {
    PackageName::parse(text).unwrap()
}

const INTEGRITY_A: &str =
    "sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

fn manifest(version: &str) -> Value {
    serde_json::json!({
        "name": "demo",
        "version": version,
        "description": "kept in full, dropped in abbreviated",
        "scripts": {"postinstall": "node setup.js"},
        "dependencies": {"left-pad": "^1.0.0"},
        "_npmUser": {"name": "GitHub Actions", "email": "npm-oidc-no-reply@github.com", "trustedPublisher": {"id": "github", "oidcConfigId": "oidc:1"}},
        "dist": {
            "tarball": format!("https://upstream.example/demo/-/demo-{version}.tgz"),
            "integrity": INTEGRITY_A,
            "shasum": "0000000000000000000000000000000000000000",
            "signatures": [{"keyid": "SHA256:x", "sig": "y"}],
            "attestations": {"url": format!("https://upstream.example/-/npm/v1/attestations/demo@{version}"), "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}}
        }
    })
}

fn document() -> Value {
    serde_json::json!({
        "name": "demo",
        "description": "demo package",
        "dist-tags": {"latest": "2.0.0", "next": "3.0.0-beta.1", "legacy": "1.0.0"},
        "versions": {
            "1.0.0": manifest("1.0.0"),
            "1.1.0": manifest("1.1.0"),
            "2.0.0": manifest("2.0.0"),
            "3.0.0-beta.1": manifest("3.0.0-beta.1")
        },
        "time": {
            "created": "2020-01-01T00:00:00.000Z",
            "modified": "2026-11-20T00:00:00.000Z",
            "1.0.0": "2020-01-01T00:00:00.000Z",
            "1.1.0": "2021-01-01T00:00:00.000Z",
            "2.0.0": "2026-11-20T00:00:00.000Z",
            "3.0.0-beta.1": "2026-11-20T00:00:00.000Z"
        },
        "readme": "<script>alert(1)</script>"
    })
}

fn parse(body: &[u8]) -> Document<'_> {
    parse_upstream(&name("demo"), body).unwrap()
}

fn records(body: &[u8]) -> HashMap<String, VersionRecord> {
    version_facts(&name("demo"), &parse(body), "https://upstream.example")
        .versions
        .into_iter()
        .map(|facts| {
            let claimed = facts.claimed_published.unwrap();
            (
                facts.version.as_str().to_owned(),
                VersionRecord {
                    first_seen: claimed,
                    claimed_published: Some(claimed),
                    effective_published: claimed,
                    integrity: facts.integrity.unwrap().to_string(),
                    blob_sha512: None,
                    // Old versions were released long ago; recent ones passed their
                    // checks and wait for the cooling period.
                    state: if claimed.year() < 2026 { VersionState::Released } else { VersionState::Cooling },
                    state_changed_at: None,
                    decided_by: None,
                    reason: None,
                    airlock_signature: Some("c2lnbmF0dXJl".into()),
                },
            )
        })
        .collect()
}

fn context(policy: &Policy, now: DateTime<Utc>) -> RenderContext<'_> {
    RenderContext {
        public_base: "http://airlock.test:4873",
        upstream_base: "https://upstream.example",
        policy,
        airlock_key_id: "SHA256:airlock",
        now,
    }
}

fn render_at(now: DateTime<Utc>, cooling_hours: u64) -> (Rendered, Value, Value) {
    let body = serde_json::to_vec(&document()).unwrap();
    let policy = policy(cooling_hours);
    let rendered = render(&name("demo"), &parse(&body), &records(&body), &context(&policy, now));
    let full = serde_json::from_slice(&rendered.full.identity).unwrap();
    let abbreviated = serde_json::from_slice(&rendered.abbreviated.identity).unwrap();
    (rendered, full, abbreviated)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap()
}

#[test]
fn young_versions_are_hidden_and_tags_move_to_the_newest_older_visible_version() {
    let (rendered, full, abbreviated) = render_at(now(), 72);
    let versions: Vec<&String> = full["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);
    // `next` pointed at a prerelease; with no visible prerelease it falls back to the
    // newest visible version below it.
    assert_eq!(full["dist-tags"], serde_json::json!({"latest": "1.1.0", "next": "1.1.0", "legacy": "1.0.0"}));
    assert_eq!(abbreviated["dist-tags"], full["dist-tags"]);
    let times: Vec<&String> = full["time"].as_object().unwrap().keys().collect();
    assert_eq!(times, ["created", "modified", "1.0.0", "1.1.0"]);
    assert_eq!(
        rendered.notice.as_deref(),
        Some(
            "[airlock] demo@3.0.0-beta.1 is in quarantine: its checks passed but it is younger than the cooling period; it can be installed from 2026-11-23T00:00:00Z unless an Airlock admin approves it sooner; 1 other version of demo is in quarantine too"
        )
    );
    assert_eq!(rendered.valid_until, Some(Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()));
    // Hidden versions still resolve to a tarball so the client gets a reason, not a 404.
    assert_eq!(rendered.index.tarballs.get("demo-2.0.0.tgz").map(String::as_str), Some("2.0.0"));
    assert!(matches!(rendered.index.versions["2.0.0"].visibility, Visibility::Cooling { .. }));
}

#[test]
fn after_the_cooling_period_everything_is_listed_with_upstream_tags() {
    let (rendered, full, _) = render_at(now() + chrono::Duration::days(3), 72);
    assert_eq!(full["versions"].as_object().unwrap().len(), 4);
    assert_eq!(full["dist-tags"], document()["dist-tags"]);
    assert!(rendered.notice.is_none());
    assert!(rendered.valid_until.is_none());
}

#[test]
fn tarball_urls_point_at_airlock_and_everything_else_is_untouched() {
    let (_, full, _) = render_at(now(), 0);
    let dist = &full["versions"]["1.0.0"]["dist"];
    assert_eq!(dist["tarball"], "http://airlock.test:4873/demo/-/demo-1.0.0.tgz");
    assert_eq!(dist["integrity"], INTEGRITY_A);
    assert_eq!(dist["signatures"][0]["keyid"], "SHA256:x");
    // Airlock's own signature is added after the upstream's.
    assert_eq!(dist["signatures"][1], serde_json::json!({"keyid": "SHA256:airlock", "sig": "c2lnbmF0dXJl"}));
    assert_eq!(full["readme"], "<script>alert(1)</script>");
    assert_eq!(full["versions"]["1.0.0"]["description"], "kept in full, dropped in abbreviated");
}

#[test]
fn abbreviated_versions_keep_install_fields_and_flag_install_scripts() {
    let (_, _, abbreviated) = render_at(now(), 0);
    let version = &abbreviated["versions"]["1.0.0"];
    assert_eq!(version["hasInstallScript"], true);
    assert_eq!(version["dependencies"]["left-pad"], "^1.0.0");
    assert!(version.get("description").is_none());
    assert!(version.get("scripts").is_none());
    assert_eq!(abbreviated["modified"], "2026-11-20T00:00:00.000Z");
    assert_eq!(abbreviated["time"]["1.0.0"], "2020-01-01T00:00:00.000Z");
    assert!(abbreviated.get("readme").is_none());
    // What pnpm's release-age and trust-policy checks read from this document.
    assert_eq!(version["_npmUser"]["trustedPublisher"]["id"], "github");
    assert_eq!(version["dist"]["attestations"]["provenance"]["predicateType"], "https://slsa.dev/provenance/v1");
}

#[test]
fn precompressed_variants_decode_to_the_identity_bytes() {
    use std::io::Read as _;
    let (rendered, _, _) = render_at(now(), 0);
    let mut gunzipped = Vec::new();
    flate2::read::GzDecoder::new(&rendered.full.compressed(Compression::Gzip)[..]).read_to_end(&mut gunzipped).unwrap();
    assert_eq!(gunzipped, rendered.full.identity);
    let mut unbrotli = Vec::new();
    assert!(rendered.abbreviated.compressed_if_ready(Compression::Brotli).is_none());
    brotli::Decompressor::new(&rendered.abbreviated.compressed(Compression::Brotli)[..], 4096)
        .read_to_end(&mut unbrotli)
        .unwrap();
    assert_eq!(unbrotli, rendered.abbreviated.identity);
}

#[test]
fn changed_integrity_hides_the_version() {
    let mut document = document();
    let body = serde_json::to_vec(&document).unwrap();
    let mut records = records(&body);
    records.get_mut("1.0.0").unwrap().integrity = "sha512-different".into();
    let policy = policy(0);
    let context = context(&policy, now());
    let rendered = render(&name("demo"), &parse(&body), &records, &context);
    assert!(matches!(rendered.index.versions["1.0.0"].visibility, Visibility::IntegrityChanged { .. }));
    // A version with no record (appeared after the last fetch was stored) is hidden too.
    document["versions"].as_object_mut().unwrap().insert("9.9.9".into(), manifest("9.9.9"));
    let body = serde_json::to_vec(&document).unwrap();
    let rendered = render(&name("demo"), &parse(&body), &records, &context);
    assert!(matches!(rendered.index.versions["9.9.9"].visibility, Visibility::Unusable { .. }));
    let full: Value = serde_json::from_slice(&rendered.full.identity).unwrap();
    assert!(full["versions"].get("9.9.9").is_none());
    assert!(full["versions"].get("1.0.0").is_none());
}

#[test]
fn duplicate_keys_keep_the_last_value_for_records_and_rendering_alike() {
    let first = serde_json::to_string(&manifest("1.0.0")).unwrap();
    let other_integrity = format!("sha512-{}Q==", "B".repeat(85));
    let second = first.replace(INTEGRITY_A, &other_integrity);
    let body = format!(
        r#"{{"name":"demo","versions":{{"1.0.0":{first},"1.0.0":{second}}},"time":{{"1.0.0":"2020-01-01T00:00:00.000Z"}}}}"#
    );
    let facts = version_facts(&name("demo"), &parse(body.as_bytes()), "https://upstream.example").versions;
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].integrity.as_ref().unwrap().to_string(), other_integrity);
    let policy = policy(0);
    let rendered = render(&name("demo"), &parse(body.as_bytes()), &records(body.as_bytes()), &context(&policy, now()));
    let full: Value = serde_json::from_slice(&rendered.full.identity).unwrap();
    assert_eq!(full["versions"]["1.0.0"]["dist"]["integrity"], other_integrity.as_str());
}

#[test]
fn a_version_manifest_is_a_slice_of_the_full_document() {
    let (rendered, full, _) = render_at(now(), 0);
    let manifest: Value = serde_json::from_slice(&rendered.manifest("1.1.0").unwrap()).unwrap();
    assert_eq!(manifest, full["versions"]["1.1.0"]);
    assert!(rendered.manifest("9.9.9").is_none());
}

#[test]
fn unlisted_fields_pass_through_byte_for_byte() {
    let body = br#"{"name":"demo","custom":{"a" : [1, 2.50, "A"]},"versions":{}}"#;
    let policy = policy(0);
    let rendered = render(&name("demo"), &parse(body), &HashMap::new(), &context(&policy, now()));
    let full = std::str::from_utf8(&rendered.full.identity).unwrap();
    assert_eq!(full, r#"{"name":"demo","custom":{"a" : [1, 2.50, "A"]},"versions":{},"dist-tags":{}}"#);
}

#[test]
fn too_many_versions_are_refused_naming_the_limit() {
    let mut body = String::from(r#"{"name":"demo","versions":{"#);
    for index in 0..=MAX_VERSIONS {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&format!(r#""0.0.{index}":1"#));
    }
    body.push_str("}}");
    let error = parse_upstream(&name("demo"), body.as_bytes()).unwrap_err();
    assert_eq!(error, "the packument of demo lists 100001 versions, more than Airlock's limit of 100000");
}

#[test]
fn foreign_tarball_hosts_are_replaced_by_the_upstream() {
    let package = name("demo");
    assert_eq!(
        upstream_tarball_url(
            &package,
            "demo-1.0.0.tgz",
            "https://upstream.example/demo/-/demo-1.0.0.tgz",
            "https://upstream.example"
        ),
        "https://upstream.example/demo/-/demo-1.0.0.tgz"
    );
    assert_eq!(
        upstream_tarball_url(
            &package,
            "demo-1.0.0.tgz",
            "http://169.254.169.254/latest/meta-data",
            "https://upstream.example"
        ),
        "https://upstream.example/demo/-/demo-1.0.0.tgz"
    );
}

#[test]
fn upstream_documents_for_another_name_are_refused() {
    let body = serde_json::to_vec(&document()).unwrap();
    assert_eq!(
        parse_upstream(&name("other"), &body).unwrap_err(),
        "the upstream answered for \"demo\" when asked for other"
    );
    assert!(parse_upstream(&name("demo"), b"[1,2]").is_err());
    assert!(parse_upstream(&name("demo"), b"{\"name\":\"demo\",\"versions\":[]}").is_err());
    assert!(parse_upstream(&name("demo"), &body).is_ok());
}

#[test]
fn prerelease_tags_only_move_within_prereleases_or_below() {
    let tags = [("latest", "2.0.0"), ("next", "2.1.0-rc.2")];
    let moved = recompute_dist_tags(tags.into_iter(), ["1.0.0", "2.1.0-rc.1", "1.5.0-beta"].into_iter());
    assert_eq!(moved, [("latest".to_owned(), "1.0.0".to_owned()), ("next".to_owned(), "2.1.0-rc.1".to_owned())]);
    let dropped = recompute_dist_tags(tags.into_iter(), std::iter::empty());
    assert!(dropped.is_empty());
}

#[test]
fn deeply_nested_documents_are_refused_naming_the_limit() {
    let nested = format!(
        r#"{{"name":"demo","readme":"[[[[ in a string is fine","x":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let error = parse_upstream(&name("demo"), nested.as_bytes()).unwrap_err();
    assert_eq!(error, "the packument of demo nests deeper than Airlock's limit of 256 levels");
    let shallow =
        format!(r#"{{"name":"demo","readme":"{}","x":{}1{}}}"#, "[".repeat(10_000), "[".repeat(200), "]".repeat(200));
    assert!(parse_upstream(&name("demo"), shallow.as_bytes()).is_ok());
}

/// A document listing `versions` (version string, tarball file name its dist declares)
/// with old publish times, and a `latest` tag on the last one.
fn document_declaring(versions: &[(&str, &str)]) -> Vec<u8> {
    let mut version_map = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for (version, file_name) in versions {
        let mut manifest = manifest(version);
        manifest["dist"]["tarball"] = Value::from(format!("https://upstream.example/demo/-/{file_name}"));
        version_map.insert((*version).to_owned(), manifest);
        time.insert((*version).to_owned(), Value::from("2020-01-01T00:00:00.000Z"));
    }
    let latest = versions.last().map(|(version, _)| *version).unwrap_or("");
    serde_json::to_vec(&serde_json::json!({
        "name": "demo",
        "dist-tags": {"latest": latest},
        "versions": version_map,
        "time": time,
    }))
    .unwrap()
}

fn refused_versions(body: &[u8]) -> Vec<(String, String)> {
    let facts = version_facts(&name("demo"), &parse(body), "https://upstream.example");
    facts.refused.into_iter().map(|refused| (refused.version, refused.reason)).collect()
}

fn listed_versions(body: &[u8]) -> (Vec<String>, Rendered) {
    let policy = policy(0);
    let rendered = render(&name("demo"), &parse(body), &records(body), &context(&policy, now()));
    let full: Value = serde_json::from_slice(&rendered.full.identity).unwrap();
    let listed = full["versions"].as_object().unwrap().keys().cloned().collect();
    (listed, rendered)
}

// See: issue 11, item 4.
#[test]
fn hostile_version_strings_are_never_recorded_or_listed() {
    let hostile =
        [" 1.0.0 ", "1.0.0\u{0}x", "<script>alert(1)</script>", "\u{ff11}.\u{ff10}.\u{ff10}", "1.0.0/../../x"];
    let mut declared: Vec<(&str, String)> = vec![("1.0.0", "demo-1.0.0.tgz".to_owned())];
    declared.extend(hostile.iter().enumerate().map(|(index, version)| (*version, format!("demo-h{index}.tgz"))));
    let declared: Vec<(&str, &str)> = declared.iter().map(|(version, file)| (*version, file.as_str())).collect();
    let body = document_declaring(&declared);

    let refused = refused_versions(&body);
    assert_eq!(refused.iter().map(|(version, _)| version.as_str()).collect::<Vec<_>>(), hostile);
    assert_eq!(refused[1].1, "invalid version \"1.0.0\\0x\": the character '\\0' is not an ASCII digit");
    let facts = version_facts(&name("demo"), &parse(&body), "https://upstream.example");
    assert_eq!(facts.versions.iter().map(|facts| facts.version.as_str()).collect::<Vec<_>>(), ["1.0.0"]);

    let (listed, rendered) = listed_versions(&body);
    assert_eq!(listed, ["1.0.0"]);
    let full: Value = serde_json::from_slice(&rendered.full.identity).unwrap();
    assert_eq!(full["time"].as_object().unwrap().keys().collect::<Vec<_>>(), ["1.0.0"]);
    // `latest` pointed at a hostile version, which is not semver: the tag is dropped.
    assert_eq!(full["dist-tags"], serde_json::json!({}));
    assert_eq!(rendered.index.versions.keys().collect::<Vec<_>>(), ["1.0.0"]);
    assert_eq!(rendered.index.tarballs.keys().collect::<Vec<_>>(), ["demo-1.0.0.tgz"]);
    assert!(parse(&body).manifest("1.0.0\u{0}x").is_none());
}

// See: issue 11, item 4.
#[test]
fn a_version_declaring_another_versions_tarball_is_refused_whatever_the_order() {
    for declared in [
        [("1.0.0", "demo-1.0.0.tgz"), ("2.0.0", "demo-1.0.0.tgz")],
        [("2.0.0", "demo-1.0.0.tgz"), ("1.0.0", "demo-1.0.0.tgz")],
    ] {
        let body = document_declaring(&declared);
        assert_eq!(
            refused_versions(&body),
            [(
                "2.0.0".to_owned(),
                "version \"2.0.0\" declares the tarball \"demo-1.0.0.tgz\", which belongs to version 1.0.0".to_owned()
            )]
        );
        let (listed, rendered) = listed_versions(&body);
        assert_eq!(listed, ["1.0.0"]);
        assert_eq!(rendered.index.tarballs["demo-1.0.0.tgz"], "1.0.0");
        assert!(!rendered.index.versions.contains_key("2.0.0"));
    }
}

// See: issue 11, item 4.
#[test]
fn versions_sharing_a_tarball_that_is_neither_ones_are_all_refused() {
    let body = document_declaring(&[("1.0.0", "demo-1.0.0.tgz"), ("1.1.0", "shared.tgz"), ("1.2.0", "shared.tgz")]);
    assert_eq!(
        refused_versions(&body),
        [
            (
                "1.1.0".to_owned(),
                "version \"1.1.0\" declares the tarball \"shared.tgz\", which is also declared by \"1.2.0\"".to_owned()
            ),
            (
                "1.2.0".to_owned(),
                "version \"1.2.0\" declares the tarball \"shared.tgz\", which is also declared by \"1.1.0\"".to_owned()
            ),
        ]
    );
    let (listed, rendered) = listed_versions(&body);
    assert_eq!(listed, ["1.0.0"]);
    assert!(!rendered.index.tarballs.contains_key("shared.tgz"));
}
