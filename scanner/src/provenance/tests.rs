//! Tests of the shared provenance helpers.

use super::*;

#[test]
fn package_urls_percent_encode_the_scope() {
    assert_eq!(npm_package_url("sigstore", "2.3.1"), "pkg:npm/sigstore@2.3.1");
    assert_eq!(npm_package_url("@playwright/cli", "0.1.1"), "pkg:npm/%40playwright/cli@0.1.1");
}

#[test]
fn sri_sha512_decodes_and_matches_the_bytes() {
    let tarball =
        include_bytes!("../../test_data/provenance/registry/@isaacs/namespace-test/-/namespace-test-1.0.0.tgz");
    let integrity = "sha512-5ZYe1LgwHIaag0p9loMwsf5N/wJ4XAuHVNhSO+qulQOXWnyJVuco6IZjo+5u4ZLF/GimdHJcX+QK892ONfOCqQ==";
    assert_eq!(sha512_from_integrity(integrity), Some(sha512_of(tarball)));
    assert_eq!(sha512_from_integrity(&format!("sha1-abc {integrity}")), Some(sha512_of(tarball)));
    assert_eq!(sha512_from_integrity("sha1-5d907c3e"), None);
    assert_eq!(sha512_from_integrity("sha512-!!!"), None);
}
