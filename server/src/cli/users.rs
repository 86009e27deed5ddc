//! `airlock admin add-user NAME`: creates or updates an admin web UI user. The password
//! is read from standard input (prompted for, without echo, on a terminal), never from
//! a flag, and only its argon2id hash is written.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use airlock_config::{Config, Overrides};
use anyhow::Context as _;

use crate::admin_users;

/// Arguments of `airlock admin add-user`.
#[derive(Debug, clap::Args)]
pub struct AddUserArgs {
    /// The sign-in name (letters, digits, `.`, `_`, `-`); actions are recorded as `admin:NAME`.
    pub name: String,
    /// The configuration file, to find the data directory.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The data directory (overrides the configuration and `AIRLOCK_DATA_DIR`).
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Print a `[[admin.users]]` TOML entry instead of writing the user file.
    #[arg(long)]
    pub print: bool,
}

/// Runs the command.
pub fn run(args: &AddUserArgs) -> anyhow::Result<ExitCode> {
    admin_users::validate_name(&args.name).map_err(anyhow::Error::msg)?;
    let password = read_password()?;
    if password.chars().count() < admin_users::MIN_PASSWORD_LENGTH {
        anyhow::bail!("the password must have at least {} characters", admin_users::MIN_PASSWORD_LENGTH);
    }
    let hash = admin_users::hash_password(&password)?;
    if args.print {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "[[admin.users]]\nname = \"{}\"\npassword_hash = \"{hash}\"", args.name)?;
        return Ok(ExitCode::SUCCESS);
    }
    let environment = Overrides::from_env(|key| std::env::var(key).ok());
    let overrides = environment.then(Overrides { data_dir: args.data_dir.clone(), ..Overrides::default() });
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Config::from_toml(&path.display().to_string(), &text, overrides)?
        }
        None => Config::from_raw(Default::default(), overrides)?,
    };
    let data_dir = &config.server.data_dir;
    let replaced = admin_users::add_user(data_dir, &args.name, &hash)?;
    let verb = if replaced { "updated the password of" } else { "added" };
    eprintln!("airlock admin add-user: {verb} {} in {}", args.name, admin_users::users_file(data_dir).display());
    Ok(ExitCode::SUCCESS)
}

/// On a terminal: prompts twice with echo off. Otherwise: the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let prompt = |text: &str| -> anyhow::Result<String> {
        eprint!("{text}");
        let _ = std::io::stderr().flush();
        let _ = std::process::Command::new("stty").arg("-echo").stdin(std::fs::File::open("/dev/tty")?).status();
        let mut line = String::new();
        let result = stdin.lock().read_line(&mut line);
        let _ = std::process::Command::new("stty").arg("echo").stdin(std::fs::File::open("/dev/tty")?).status();
        eprintln!();
        result.context("reading the password")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let first = prompt("Password: ")?;
    let second = prompt("Again: ")?;
    if first != second {
        anyhow::bail!("the passwords differ");
    }
    Ok(first)
}
