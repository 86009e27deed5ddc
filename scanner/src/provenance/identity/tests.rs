//! Tests of repository normalisation and the identity policy.

use super::*;

fn check_normalized(url: &str, expected: Option<&str>) {
    let actual = normalize_repository_url(url).map(|id| id.to_string());
    assert_eq!(actual.as_deref(), expected, "{url}");
}

#[test]
fn repository_spellings_npm_accepts_normalise_to_one_id() {
    let same = Some("github.com/sigstore/sigstore-js");
    for url in [
        "https://github.com/sigstore/sigstore-js",
        "https://github.com/sigstore/sigstore-js.git",
        "git+https://github.com/sigstore/sigstore-js.git",
        "git+https://github.com/Sigstore/Sigstore-JS.git",
        "git://github.com/sigstore/sigstore-js.git",
        "git+ssh://git@github.com/sigstore/sigstore-js.git",
        "ssh://git@github.com/sigstore/sigstore-js",
        "git+ssh://git@github.com:sigstore/sigstore-js.git",
        "ssh://git@github.com:22/sigstore/sigstore-js.git",
        "git@github.com:sigstore/sigstore-js.git",
        "github:sigstore/sigstore-js",
        "sigstore/sigstore-js",
        "https://github.com/sigstore/sigstore-js/",
        "https://github.com/sigstore/sigstore-js#main",
        "https://github.com/sigstore/sigstore-js/tree/main/packages/client",
        "HTTPS://GitHub.com/sigstore/sigstore-js",
    ] {
        check_normalized(url, same);
    }
    check_normalized("gitlab:group/sub/project", Some("gitlab.com/group/sub/project"));
    check_normalized("https://gitlab.com/group/sub/project.git", Some("gitlab.com/group/sub/project"));
    check_normalized("bitbucket:team/repo", Some("bitbucket.org/team/repo"));
    check_normalized("https://github.example.com/team/repo.git", Some("github.example.com/team/repo"));
}

#[test]
fn things_that_are_not_repositories_normalise_to_none() {
    for url in [
        "",
        "https://github.com/",
        "https://github.com/only-owner",
        "gist:11081aaa281",
        "file:../local",
        "javascript:alert(1)",
        "https://github.com/../../etc",
        "just-a-word",
    ] {
        check_normalized(url, None);
    }
}

#[test]
fn package_json_repository_reads_strings_objects_and_directories() {
    let json = serde_json::json!({"repository": {"type": "git", "url": "git+https://github.com/o/mono.git", "directory": "packages/a/"}});
    let (id, directory) = package_json_repository(&json).unwrap();
    assert_eq!(id.to_string(), "github.com/o/mono");
    assert_eq!(directory.as_deref(), Some("packages/a"));
    let json = serde_json::json!({"repository": "github:o/r"});
    assert_eq!(package_json_repository(&json).unwrap().0.owner_and_name(), Some(("o", "r")));
    assert_eq!(package_json_repository(&serde_json::json!({})), None);
}

fn identity(repository: &str, workflow: &str, git_ref: &str) -> ProvenanceIdentity {
    ProvenanceIdentity {
        source_repository_uri: repository.to_owned(),
        source_commit: Some("46e7056ff9912ebfee5298d94024895a9fea76c0".to_owned()),
        source_ref: Some(git_ref.to_owned()),
        workflow_path: Some(workflow.to_owned()),
        build_signer_uri: None,
        builder_id: None,
        issuer: None,
        run_invocation_uri: None,
        runner_environment: None,
    }
}

fn rules(result: &IdentityPolicyResult) -> Vec<String> {
    result.findings().into_iter().map(|finding| format!("{}:{}", finding.rule, finding.severity)).collect()
}

#[test]
fn provenance_repository_must_equal_package_json_repository() {
    let built = identity("https://github.com/sigstore/sigstore-js", ".github/workflows/release.yml", "refs/heads/main");
    let json =
        serde_json::json!({"repository": {"type": "git", "url": "git+https://github.com/sigstore/sigstore-js.git"}});
    let result = check_identity_policy(Some(&built), &json, None, &ProvenancePins::default());
    assert!(matches!(result.repository, RepositoryMatch::Matches { .. }));
    assert_eq!(rules(&result), Vec::<String>::new());

    let json = serde_json::json!({"repository": "github:attacker/sigstore-js"});
    let result = check_identity_policy(Some(&built), &json, None, &ProvenancePins::default());
    assert_eq!(
        result.repository,
        RepositoryMatch::Mismatch {
            provenance: "https://github.com/sigstore/sigstore-js".to_owned(),
            package_json: "github.com/attacker/sigstore-js".to_owned(),
        }
    );
    assert_eq!(rules(&result), ["provenance-repository-mismatch:high"]);

    let result = check_identity_policy(Some(&built), &serde_json::json!({}), None, &ProvenancePins::default());
    assert_eq!(rules(&result), ["provenance-repository-mismatch:medium"]);

    let result = check_identity_policy(None, &json, None, &ProvenancePins::default());
    assert_eq!(result.repository, RepositoryMatch::NoProvenance);
    assert_eq!(rules(&result), Vec::<String>::new());
}

#[test]
fn continuity_with_the_last_released_version_is_checked() {
    let json = serde_json::json!({"repository": "github:o/r"});
    let before = PreviousProvenance {
        version: "1.0.15".to_owned(),
        identity: Some(identity("https://github.com/o/r", ".github/workflows/release.yml", "refs/tags/v1.0.15")),
    };
    let same = identity("https://github.com/O/R", ".github/workflows/release.yml", "refs/tags/v1.0.16");
    let result = check_identity_policy(Some(&same), &json, Some(&before), &ProvenancePins::default());
    assert_eq!(result.regressions, []);

    let result = check_identity_policy(None, &json, Some(&before), &ProvenancePins::default());
    assert_eq!(
        result.regressions,
        [ProvenanceRegression::Disappeared {
            previous_version: "1.0.15".to_owned(),
            previous_repository: "https://github.com/o/r".to_owned(),
        }]
    );
    assert_eq!(rules(&result), ["provenance-regression:high"]);
    insta::assert_snapshot!(
        result.findings()[0].message,
        @"Version 1.0.15 had provenance from `https://github.com/o/r`; this version has none."
    );

    let moved = identity("https://github.com/fork/r", ".github/workflows/other.yml", "refs/heads/main");
    let result = check_identity_policy(
        Some(&moved),
        &serde_json::json!({"repository": "fork/r"}),
        Some(&before),
        &ProvenancePins::default(),
    );
    assert_eq!(rules(&result), ["provenance-regression:high", "provenance-regression:high"]);

    let never = PreviousProvenance { version: "1.0.0".to_owned(), identity: None };
    let result = check_identity_policy(None, &json, Some(&never), &ProvenancePins::default());
    assert_eq!(result.regressions, []);
}

#[test]
fn pins_on_repository_workflow_and_ref_are_enforced() {
    let json = serde_json::json!({"repository": "github:o/r"});
    let built = identity("https://github.com/o/r", ".github/workflows/release.yml", "refs/tags/v2.0.0");
    let pins = ProvenancePins {
        repository: Some("git+https://github.com/o/r.git".to_owned()),
        workflow: Some("./.github/workflows/release.yml".to_owned()),
        ref_pattern: Some("refs/tags/v*".to_owned()),
        require_provenance: true,
    };
    assert_eq!(check_identity_policy(Some(&built), &json, None, &pins).pin_violations, []);

    let built = identity("https://github.com/x/r", ".github/workflows/ci.yml", "refs/heads/feature");
    let result = check_identity_policy(Some(&built), &json, None, &pins);
    assert_eq!(result.pin_violations.len(), 3);
    assert!(rules(&result).iter().filter(|rule| rule.starts_with("provenance-pin-violation")).count() == 3);

    let result = check_identity_policy(None, &json, None, &pins);
    assert_eq!(result.pin_violations, [PinViolation::NoProvenance]);
    let result = check_identity_policy(None, &json, None, &ProvenancePins::default());
    assert_eq!(result.pin_violations, []);
}

#[test]
fn ref_globs_match_literally_except_for_stars() {
    assert!(glob_matches("refs/tags/v*", "refs/tags/v1.2.3"));
    assert!(glob_matches("refs/*/main", "refs/heads/main"));
    assert!(glob_matches("refs/heads/main", "refs/heads/main"));
    assert!(!glob_matches("refs/tags/v*", "refs/heads/v1"));
    assert!(!glob_matches("refs/tags/v*.0", "refs/tags/v1.1"));
    assert!(!glob_matches("a*a", "a"));
}
