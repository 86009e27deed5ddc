//! Airlock's admin web UI: renders plain view models ([`views`]) to HTML with askama
//! templates, which are checked at compile time and escape every value for HTML text
//! and attributes. It knows nothing of storage, HTTP or the scanner: the server fills
//! the view models and serves the strings.
//!
//! Every value that comes from a package is hostile. The templates never use `|safe`;
//! URLs are built here with [`paths`], which percent-encodes each package value, and
//! no package value is ever written into a script or a style.
#![warn(missing_docs)]

pub mod paths;
pub mod views;

use askama::Template;

use views::{
    AuditPage, ConfirmPage, DeveloperStatusPage, ErrorPage, KeysPage, PackagePage, PolicyPage, QueuePage, SignInPage,
    VersionPage,
};

/// The stylesheet, served at [`paths::STYLESHEET`].
pub const STYLESHEET: &str = include_str!("../static/admin.css");

/// The only script, served at [`paths::SCRIPT`]. Pages work without it.
pub const SCRIPT: &str = include_str!("../static/admin.js");

/// The Content-Security-Policy of every admin page: no inline script or style, nothing
/// from elsewhere, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

macro_rules! page_template {
    ($template:ident, $view:ty, $path:literal) => {
        #[derive(Template)]
        #[template(path = $path)]
        struct $template<'a> {
            page: &'a $view,
        }
    };
}

page_template!(SignInTemplate, SignInPage, "sign_in.html");
page_template!(QueueTemplate, QueuePage, "queue.html");
page_template!(VersionTemplate, VersionPage, "version.html");
page_template!(ConfirmTemplate, ConfirmPage, "confirm.html");
page_template!(PackageTemplate, PackagePage, "package.html");
page_template!(AuditTemplate, AuditPage, "audit.html");
page_template!(PolicyTemplate, PolicyPage, "policy.html");
page_template!(KeysTemplate, KeysPage, "keys.html");
page_template!(ErrorTemplate, ErrorPage, "error.html");
page_template!(StatusTemplate, DeveloperStatusPage, "status.html");

fn render(template: &impl Template) -> String {
    // Rendering into a String fails only if a Display impl fails; ours are strings and
    // numbers, so this cannot happen. A blank page is the fail-safe outcome regardless.
    template.render().unwrap_or_default()
}

/// The sign-in page.
pub fn render_sign_in(page: &SignInPage) -> String {
    render(&SignInTemplate { page })
}

/// The review queue.
pub fn render_queue(page: &QueuePage) -> String {
    render(&QueueTemplate { page })
}

/// One version: findings, diff, provenance, source match, history and the actions.
pub fn render_version(page: &VersionPage) -> String {
    render(&VersionTemplate { page })
}

/// The confirmation step before approving a version with a critical finding.
pub fn render_confirm(page: &ConfirmPage) -> String {
    render(&ConfirmTemplate { page })
}

/// One package: every version and its provenance continuity.
pub fn render_package(page: &PackagePage) -> String {
    render(&PackageTemplate { page })
}

/// The audit log.
pub fn render_audit(page: &AuditPage) -> String {
    render(&AuditTemplate { page })
}

/// The effective policy and the rule editor.
pub fn render_policy(page: &PolicyPage) -> String {
    render(&PolicyTemplate { page })
}

/// Airlock's public keys and the commands CI verifies with.
pub fn render_keys(page: &KeysPage) -> String {
    render(&KeysTemplate { page })
}

/// An error page.
pub fn render_error(page: &ErrorPage) -> String {
    render(&ErrorTemplate { page })
}

/// The public status page of a version, for a developer who was refused it.
pub fn render_developer_status(page: &DeveloperStatusPage) -> String {
    render(&StatusTemplate { page })
}

/// One CSV cell, quoted, and safe against CSV injection: a cell that a spreadsheet
/// would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) gets a leading `'`, so package content cannot run formulas on the reader.
pub fn csv_cell(value: &str) -> String {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut cell = String::with_capacity(value.len() + 4);
    cell.push('"');
    if formula {
        cell.push('\'');
    }
    for character in value.chars() {
        if character == '"' {
            cell.push('"');
        }
        cell.push(character);
    }
    cell.push('"');
    cell
}

/// One CSV line (with `\r\n`) of [`csv_cell`]s.
pub fn csv_line<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = cells.into_iter().map(csv_cell).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests;
