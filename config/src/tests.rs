//! Unit tests for merging and validation.

use super::*;

fn check_error(toml_text: &str, expected: &str) {
    let error = Config::from_toml("airlock.toml", toml_text, Overrides::default()).unwrap_err();
    assert_eq!(error.to_string(), expected);
}

#[test]
fn defaults_are_loopback_public_registry_and_three_days() {
    let config = Config::defaults();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:4873");
    assert_eq!(config.server.public_url.as_str(), "http://127.0.0.1:4873/");
    assert_eq!(config.upstream.url.as_str(), "https://registry.npmjs.org/");
    assert_eq!(config.quarantine.cooling_period, Duration::from_secs(72 * 3600));
    assert_eq!(config.server.data_dir, PathBuf::from("./airlock-data"));
    assert!(!config.log.json);
}

#[test]
fn the_example_file_parses_and_matches_the_defaults() {
    let text = include_str!("../airlock.toml");
    let config = Config::from_toml("config/airlock.toml", text, Overrides::default()).unwrap();
    let defaults = Config::defaults();
    assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
}

#[test]
fn unknown_keys_are_named() {
    let error =
        Config::from_toml("airlock.toml", "[upstream]\nurll = \"x\"\n", Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("unknown field `urll`"), "{error}");
    assert!(error.starts_with("invalid configuration file airlock.toml"), "{error}");
    let error = Config::from_toml("airlock.toml", "[nope]\n", Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("unknown field `nope`"), "{error}");
}

#[test]
fn bad_values_quote_key_and_value() {
    check_error(
        "[quarantine]\ncooling_period = \"3 fortnights\"\n",
        "invalid value for `quarantine.cooling_period`: \"3 fortnights\": expected a duration such as \"72h\", \"30m\" or \"0s\" (unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations))",
    );
    check_error(
        "[upstream]\nurl = \"ftp://example.org\"\n",
        "invalid value for `upstream.url`: \"ftp://example.org\": expected an http:// or https:// URL",
    );
    check_error(
        "[server]\nlisten = \"localhost\"\n",
        "invalid value for `server.listen`: \"localhost\": expected an IP address and port such as 127.0.0.1:4873",
    );
    check_error(
        "[limits]\nmax_tarball_size = \"12 parsecs\"\n",
        "invalid value for `limits.max_tarball_size`: \"12 parsecs\": unknown size unit \"parsecs\"; use B, KiB, MiB or GiB",
    );
    check_error("[log]\nformat = \"xml\"\n", "invalid value for `log.format`: \"xml\": expected \"text\" or \"json\"");
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let file = "[quarantine]\ncooling_period = \"24h\"\n[upstream]\nurl = \"http://file.example/\"\n";
    let env = Overrides::from_env(|key| match key {
        "AIRLOCK_COOLING_PERIOD" => Some("30m".into()),
        "AIRLOCK_UPSTREAM" => Some("http://env.example/npm/".into()),
        _ => None,
    });
    let flags = Overrides { cooling_period: Some("0s".into()), ..Overrides::default() };
    let config = Config::from_toml("f", file, env.then(flags)).unwrap();
    assert_eq!(config.quarantine.cooling_period, Duration::ZERO);
    // The trailing slash is dropped so paths can be appended.
    assert_eq!(config.upstream.url.as_str(), "http://env.example/npm");
}

#[test]
fn public_url_follows_listen_address_by_default() {
    let overrides = Overrides { listen: Some("127.0.0.1:9999".into()), ..Overrides::default() };
    let config = Config::from_raw(RawConfig::default(), overrides).unwrap();
    assert_eq!(config.server.public_url.as_str(), "http://127.0.0.1:9999/");
}

#[test]
fn sizes_accept_numbers_and_units() {
    assert_eq!(parse_byte_size("1024"), Ok(1024));
    assert_eq!(parse_byte_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_byte_size("2 GB"), Ok(2_000_000_000));
    assert!(parse_byte_size("99999999999999GiB").is_err());
    let config = Config::from_toml("f", "[limits]\nmax_packument_size = 4096\n", Overrides::default()).unwrap();
    assert_eq!(config.limits.max_packument_size, 4096);
}

#[test]
fn zero_disables_the_cooling_period() {
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(format_duration(Duration::from_secs(72 * 3600)), "3days");
}

#[test]
fn policy_rules_match_names_scopes_prefixes_and_npm_ranges() {
    let text = r#"
[quarantine]
hold_severity = "medium"
[quarantine.rule_severity]
"install-script" = "low"
[[quarantine.allow]]
package = "@mycompany/*"
[[quarantine.deny]]
package = "event-stream"
versions = "3.3.6 || >=4.0.0"
reason = "flatmap-stream"
[[quarantine.require_provenance]]
package = "sigstore*"
[[quarantine.provenance_pins]]
package = "@mycompany/*"
repository = "github:mycompany/packages"
ref = "refs/tags/v*"
"#;
    let config = Config::from_toml("f", text, Overrides::default()).unwrap();
    let quarantine = &config.quarantine;
    assert_eq!(quarantine.hold_severity, SeverityLevel::Medium);
    assert_eq!(quarantine.rule_severity["install-script"], SeverityLevel::Low);
    assert!(quarantine.allow[0].matches("@mycompany/tool", "9.9.9"));
    assert!(!quarantine.allow[0].matches("@other/tool", "1.0.0"));
    assert!(quarantine.deny[0].matches("event-stream", "3.3.6"));
    assert!(quarantine.deny[0].matches("event-stream", "4.1.0"));
    assert!(!quarantine.deny[0].matches("event-stream", "3.3.5"));
    assert!(quarantine.require_provenance[0].matches("sigstore", "1.0.0"));
    assert!(quarantine.require_provenance[0].matches_package("sigstore-js"));
    assert!(quarantine.provenance_pins[0].rule.matches_package("@mycompany/ui"));
    assert_eq!(quarantine.provenance_pins[0].ref_pattern.as_deref(), Some("refs/tags/v*"));
}

#[test]
fn bad_policy_is_a_startup_error_naming_the_key() {
    check_error(
        "[quarantine]\nhold_severity = \"severe\"\n",
        "invalid value for `quarantine.hold_severity`: \"severe\": expected info, low, medium, high or critical",
    );
    let error = Config::from_toml(
        "f",
        "[[quarantine.deny]]\npackage = \"x\"\nversions = \"not a range!\"\n",
        Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("invalid value for `quarantine.deny`: \"not a range!\": not an npm version range"),
        "{error}"
    );
    check_error(
        "[[quarantine.allow]]\npackage = \"a*b*\"\n",
        "invalid value for `quarantine.allow`: \"a*b*\": expected a package name, `@scope/*`, a `prefix*` or `*`",
    );
    check_error(
        "[[quarantine.provenance_pins]]\npackage = \"x\"\n",
        "invalid value for `quarantine.provenance_pins`: \"x\": a pin needs at least one of repository, workflow, ref",
    );
    check_error(
        "[[admin.tokens]]\nname = \"alice\"\nsha256 = \"abc\"\n",
        "invalid value for `admin.tokens`: \"alice: abc\": sha256 must be 64 hex digits",
    );
}

#[test]
fn the_admin_token_from_the_environment_is_hashed() {
    let env =
        Overrides::from_env(|key| (key == "AIRLOCK_ADMIN_TOKEN").then(|| "s3cret-s3cret-s3cret-s3cret".to_owned()));
    let config = Config::from_raw(RawConfig::default(), env).unwrap();
    assert_eq!(config.admin.tokens.len(), 1);
    assert_eq!(config.admin.tokens[0].name, "admin");
    // The plain token is never kept, and Debug never prints the hash.
    assert!(!format!("{config:?}").contains("s3cret-s3cret-s3cret-s3cret"));
    let with_secrets = Config::from_toml(
        "f",
        "[upstream]\ntoken = \"up-secret\"\n[forge]\ntoken = \"forge-secret\"\n[notifications]\nwebhook_url = \"https://h.example/x\"\nwebhook_secret = \"hook-secret\"\n",
        Overrides::default(),
    )
    .unwrap();
    let printed = format!("{with_secrets:?}");
    for secret in ["up-secret", "forge-secret", "hook-secret"] {
        assert!(!printed.contains(secret), "{secret} leaked into Debug output");
    }
    assert_eq!(with_secrets.upstream.token.as_ref().map(Secret::expose), Some("up-secret"));
    assert_eq!(config.signing.key_dir, PathBuf::from("./airlock-data/keys"));
    assert_eq!(config.forge.api_url.as_str(), "https://api.github.com/");
}

/// Every key of the example file, commented or not: `section.key`, and table headers
/// such as `quarantine.allow`.
fn example_keys() -> Vec<String> {
    let mut keys = Vec::new();
    let mut section = String::new();
    for line in include_str!("../airlock.toml").lines() {
        let line = line.trim().trim_start_matches('#').trim();
        if let Some(header) = line.strip_prefix("[[").and_then(|rest| rest.strip_suffix("]]")) {
            keys.push(header.to_owned());
            section = header.to_owned();
        } else if let Some(header) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            if header.contains('.') {
                keys.push(header.to_owned());
            }
            section = header.to_owned();
        } else if let Some((key, _)) = line.split_once(" = ") {
            let is_identifier = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if is_identifier && !section.is_empty() {
                keys.push(format!("{section}.{key}"));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn the_readme_documents_every_key_and_environment_variable() {
    let readme = include_str!("../../README.md");
    let keys = example_keys();
    // Fields of table entries (`upstream.scopes.url`) are documented with their table.
    let documented: Vec<&String> = keys.iter().filter(|key| key.matches('.').count() == 1).collect();
    assert!(documented.len() > 30, "the example file lost its keys: {keys:?}");
    for key in documented {
        assert!(readme.contains(&format!("`{key}`")), "README.md does not document `{key}`");
    }
    for (variable, _) in EnvVars::ALL {
        assert!(readme.contains(variable), "README.md does not mention {variable}");
    }
}

#[test]
fn scoped_upstreams_take_tokens_from_the_file_or_a_named_variable() {
    let text =
        "[[upstream.scopes]]\nscope = \"@acme\"\nurl = \"https://npm.acme.example/\"\ntoken_env = \"ACME_TOKEN\"\n";
    let overrides =
        Overrides::default().resolve_scope_tokens(text, |key| (key == "ACME_TOKEN").then(|| "t0k".to_owned()));
    let config = Config::from_toml("f", text, overrides).unwrap();
    assert_eq!(config.upstream.scopes[0].scope, "@acme");
    assert_eq!(config.upstream.scopes[0].url.as_str(), "https://npm.acme.example/");
    assert_eq!(config.upstream.scopes[0].token.as_ref().map(Secret::expose), Some("t0k"));
    let error = Config::from_toml("f", text, Overrides::default()).unwrap_err().to_string();
    assert_eq!(
        error,
        "invalid value for `upstream.scopes`: \"ACME_TOKEN\": the environment variable named by token_env for @acme is not set"
    );
    check_error(
        "[[upstream.scopes]]\nscope = \"acme\"\nurl = \"https://x.example\"\n",
        "invalid value for `upstream.scopes`: \"acme\": a scope looks like @mycompany",
    );
}

#[test]
fn connection_limits_that_would_keep_hostile_sockets_forever_are_startup_errors() {
    check_error(
        "[server]\nheader_read_timeout = \"0s\"\n",
        "invalid value for `server.header_read_timeout`: \"0s\": must be positive; without it idle and slowloris connections are never closed",
    );
    check_error(
        "[server]\nmax_connections = 3\n",
        "invalid value for `server.max_connections`: \"3\": expected 16 to 1000000 connections",
    );
}

#[test]
fn redirect_hosts_are_bare_hosts() {
    let config = Config::from_toml(
        "airlock.toml",
        "[upstream]\nredirect_hosts = [\"Blobs.Example.com\", \"10.0.0.2:9000\"]\n",
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.upstream.redirect_hosts, ["blobs.example.com", "10.0.0.2:9000"]);
    check_error(
        "[upstream]\nredirect_hosts = [\"https://blobs.example.com/x\"]\n",
        "invalid value for `upstream.redirect_hosts`: \"https://blobs.example.com/x\": expected a host name or host:port, without scheme or path",
    );
}

#[test]
fn a_short_admin_token_and_a_bad_proxy_address_are_refused() {
    let env = Overrides::from_env(|key| (key == "AIRLOCK_ADMIN_TOKEN").then(|| "hunter2".to_owned()));
    let error = Config::from_raw(RawConfig::default(), env).unwrap_err().to_string();
    assert!(
        error.starts_with(
            "invalid value for `AIRLOCK_ADMIN_TOKEN`: \"[redacted]\": an admin token needs at least 24 characters"
        ),
        "{error}"
    );
    assert!(!error.contains("hunter2"));
    check_error(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        "invalid value for `server.trusted_proxies`: \"10.0.0.0/8\": expected an IP address",
    );
}

#[test]
fn check_worker_limits_default_and_are_validated() {
    let checks = Config::defaults().checks;
    assert_eq!(checks.worker_memory_limit, 1 << 30);
    assert_eq!(checks.worker_cpu_time, Duration::from_secs(60));
    assert_eq!(checks.worker_deadline, Duration::from_secs(120));
    assert_eq!(checks.max_attempts, 2);
    assert_eq!(checks.worker_executable, None);
    check_error(
        "[checks]\nworker_memory_limit = \"1MiB\"\n",
        "invalid value for `checks.worker_memory_limit`: \"1048576\": must be at least 384MiB (the worker reserves a 256MiB analysis stack)",
    );
    check_error(
        "[checks]\nworker_cpu_time = \"1500ms\"\n",
        "invalid value for `checks.worker_cpu_time`: \"1s 500ms\": expected a whole number of seconds, at least 1s",
    );
    check_error(
        "[checks]\nworker_deadline = \"10ms\"\n",
        "invalid value for `checks.worker_deadline`: \"10ms\": must be at least 100ms",
    );
    check_error("[checks]\nmax_attempts = 0\n", "invalid value for `checks.max_attempts`: \"0\": expected 1 to 100");
    check_error(
        "[checks]\nworker_executable = \"\"\n",
        "invalid value for `checks.worker_executable`: \"\": must not be empty; leave it out to use the running executable",
    );
}

fn storage_config(text: &str, overrides: Overrides) -> Result<Config, String> {
    Config::from_toml("airlock.toml", text, overrides).map_err(|error| error.to_string())
}

#[test]
fn blobs_default_to_the_data_directory() {
    assert_eq!(Config::defaults().storage.blobs, BlobStorage::Directory);
}

#[test]
fn s3_blobs_take_endpoint_bucket_region_prefix_and_credentials_from_the_environment() {
    let text = "[storage]\nblobs = \"s3\"\ns3_endpoint = \"http://127.0.0.1:8333/\"\ns3_bucket = \"airlock-blobs\"\ns3_region = \"eu-west-1\"\ns3_prefix = \"/prod/replica-set/\"\n";
    let overrides = Overrides::from_env(|key| match key {
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI-secret".to_owned()),
        _ => None,
    });
    let config = storage_config(text, overrides).unwrap();
    let BlobStorage::S3(s3) = &config.storage.blobs else { panic!("{:?}", config.storage) };
    assert_eq!(s3.endpoint.as_ref().map(Url::as_str), Some("http://127.0.0.1:8333/"));
    assert_eq!(
        (s3.bucket.as_str(), s3.region.as_str(), s3.prefix.as_str()),
        ("airlock-blobs", "eu-west-1", "prod/replica-set")
    );
    assert_eq!(s3.cache_size, 0, "no local cache unless configured");
    assert_eq!(s3.access_key_id.as_ref().map(Secret::expose), Some("AKIDEXAMPLE"));
    assert_eq!(s3.secret_access_key.as_ref().map(Secret::expose), Some("wJalrXUtnFEMI-secret"));
    let printed = format!("{config:?}");
    assert!(!printed.contains("wJalrXUtnFEMI") && !printed.contains("AKIDEXAMPLE"), "{printed}");
}

#[test]
fn bad_blob_storage_settings_are_errors_naming_the_key() {
    let cases = [
        ("blobs = \"nfs\"", "`storage.blobs`: \"nfs\""),
        ("blobs = \"s3\"\ns3_endpoint = \"http://127.0.0.1:8333\"", "`storage.s3_bucket`"),
        ("blobs = \"s3\"\ns3_bucket = \"b\"", "`storage.s3_bucket`: \"b\""),
        ("blobs = \"s3\"\ns3_bucket = \"Bad_Bucket\"", "`storage.s3_bucket`: \"Bad_Bucket\""),
        (
            "blobs = \"s3\"\ns3_bucket = \"airlock\"\ns3_endpoint = \"ftp://store\"",
            "`storage.s3_endpoint`: \"ftp://store\"",
        ),
        (
            "blobs = \"s3\"\ns3_bucket = \"airlock\"\ns3_endpoint = \"not a url\"",
            "`storage.s3_endpoint`: \"not a url\"",
        ),
        (
            "blobs = \"s3\"\ns3_bucket = \"airlock\"\ns3_endpoint = \"http://store:8333/airlock\"",
            "`storage.s3_endpoint`",
        ),
        ("blobs = \"s3\"\ns3_bucket = \"airlock\"\ns3_region = \"eu west\"", "`storage.s3_region`"),
        ("blobs = \"s3\"\ns3_bucket = \"airlock\"\ns3_prefix = \"a/../b\"", "`storage.s3_prefix`"),
        ("s3_bucket = \"airlock\"", "`storage.s3_bucket`: \"airlock\": only used with storage.blobs = \"s3\""),
        ("s3_cache_size = \"1GiB\"", "`storage.s3_cache_size`: \"1GiB\": only used with storage.blobs = \"s3\""),
        ("blobs = \"s3\"\ns3_bucket = \"airlock\"\ns3_cache_size = \"lots\"", "`storage.s3_cache_size`: \"lots\""),
    ];
    for (section, expected) in cases {
        let error = storage_config(&format!("[storage]\n{section}\n"), Overrides::default()).unwrap_err();
        assert!(error.contains(expected), "{section}: {error}");
    }
    let with_password =
        "[storage]\nblobs = \"s3\"\ns3_bucket = \"airlock\"\ns3_endpoint = \"http://key:hunter2@store:8333\"\n";
    let error = storage_config(with_password, Overrides::default()).unwrap_err();
    assert!(error.contains("`storage.s3_endpoint`") && !error.contains("hunter2"), "{error}");
    let half_credentials = Overrides::from_env(|key| (key == "AWS_ACCESS_KEY_ID").then(|| "AKIDEXAMPLE".to_owned()));
    let error = storage_config("[storage]\nblobs = \"s3\"\ns3_bucket = \"airlock\"\n", half_credentials).unwrap_err();
    assert!(
        error.contains("AWS_SECRET_ACCESS_KEY is set but") || error.contains("AWS_ACCESS_KEY_ID is set but"),
        "{error}"
    );
    assert!(!error.contains("AKIDEXAMPLE"), "{error}");
}

#[test]
fn storage_defaults_to_embedded_sled() {
    assert_eq!(Config::defaults().storage.metadata, MetadataStorage::Sled);
}

#[test]
fn postgres_storage_takes_a_url_and_a_pool_size_and_never_prints_the_password() {
    let text = "[storage]\nmetadata = \"postgres\"\nurl = \"postgres://airlock:hunter2@db.internal:6543/airlock\"\npool_size = 8\n";
    let config = Config::from_toml("airlock.toml", text, Overrides::default()).unwrap();
    let MetadataStorage::Postgres { url, pool_size } = &config.storage.metadata else { panic!("postgres") };
    assert_eq!(*pool_size, 8);
    assert_eq!(url.expose(), "postgres://airlock:hunter2@db.internal:6543/airlock");
    assert_eq!(url.address(), "db.internal:6543");
    assert_eq!(url.redacted(), "postgres://airlock:[redacted]@db.internal:6543/airlock");
    assert!(!format!("{config:?}").contains("hunter2"));
    // The environment overrides the file, so the password can stay out of it.
    let overrides = Overrides::from_env(|name| {
        (name == EnvVars::STORAGE_URL).then(|| "postgres://airlock:from-env@127.0.0.1/airlock".to_owned())
    });
    let config = Config::from_toml("airlock.toml", text, overrides).unwrap();
    let MetadataStorage::Postgres { url, .. } = &config.storage.metadata else { panic!("postgres") };
    assert_eq!(
        (url.expose(), url.address()),
        ("postgres://airlock:from-env@127.0.0.1/airlock", "127.0.0.1:5432".into())
    );
    let defaults = "[storage]\nmetadata = \"postgres\"\nurl = \"postgresql://airlock@localhost/airlock\"\n";
    let config = Config::from_toml("airlock.toml", defaults, Overrides::default()).unwrap();
    assert!(matches!(config.storage.metadata, MetadataStorage::Postgres { pool_size: 16, .. }));
}

#[test]
fn invalid_storage_settings_name_the_key() {
    check_error(
        "[storage]\nmetadata = \"mysql\"\n",
        "invalid value for `storage.metadata`: \"mysql\": expected \"sled\" or \"postgres\"",
    );
    check_error(
        "[storage]\nmetadata = \"postgres\"\n",
        "invalid value for `storage.url`: \"\": required with storage.metadata = \"postgres\" (or set AIRLOCK_STORAGE_URL)",
    );
    check_error(
        "[storage]\nmetadata = \"postgres\"\nurl = \"mysql://root:hunter2@db/airlock\"\n",
        "invalid value for `storage.url`: \"mysql://root:[redacted]@db/airlock\": expected a postgres:// URL",
    );
    check_error(
        "[storage]\nmetadata = \"postgres\"\nurl = \"postgres://root:hunter2@db\"\n",
        "invalid value for `storage.url`: \"postgres://root:[redacted]@db\": expected a database name, as in postgres://airlock@127.0.0.1:5432/airlock",
    );
    check_error(
        "[storage]\nmetadata = \"postgres\"\nurl = \"postgres://a:b@db/x\"\npool_size = 0\n",
        "invalid value for `storage.pool_size`: \"0\": expected 1 to 1000",
    );
    check_error(
        "[storage]\nurl = \"postgres://a:hunter2@db/x\"\n",
        "invalid value for `storage.url`: \"[not shown: it may contain a password]\": only used with storage.metadata = \"postgres\"",
    );
    check_error(
        "[storage]\npool_size = 4\n",
        "invalid value for `storage.pool_size`: \"4\": only used with storage.metadata = \"postgres\"",
    );
    let error = Config::from_toml(
        "airlock.toml",
        "[storage]\nmetadata = \"postgres\"\nurl = \"::hunter2\"\n",
        Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.starts_with("invalid value for `storage.url`"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
