//! Output formats and colour for idpctl.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
    /// YAML for programs and people.
    Yaml,
}

/// Where output goes, and whether it may be coloured.
pub struct Out {
    pub format: Format,
    color: bool,
}

impl Out {
    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub fn new(format: Format) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            format,
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    /// A spinner with `message` on stderr while a long operation runs — only when stdout
    /// is a terminal and the output is for people (`--format table`), so scripts and pipes
    /// never see it. It disappears when the returned [`Progress`] is dropped.
    pub fn progress(&self, message: &str) -> Progress {
        let show = self.format == Format::Table
            && std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal();
        if !show {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Progress(Some(bar))
    }

    /// `text` in red or green when colour is on.
    pub fn paint(&self, text: &str, color: Color) -> String {
        if self.color {
            let code = match color {
                Color::Red => 31,
                Color::Green => 32,
            };
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    }

    /// Print a serialisable value as JSON or YAML (for `--format json|yaml`).
    pub fn data<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        match self.format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut stdout, value).map_err(|e| {
                    // Keep the I/O kind (a closed pipe stays BrokenPipe).
                    match e.io_error_kind() {
                        Some(kind) => std::io::Error::new(kind, e),
                        None => std::io::Error::other(e),
                    }
                })?;
                writeln!(stdout)
            }
            Format::Yaml | Format::Table => {
                let text = serde_saphyr::to_string(value).map_err(std::io::Error::other)?;
                stdout.write_all(text.as_bytes())
            }
        }
    }
}

/// The few colours idpctl uses.
#[derive(Debug, Clone, Copy)]
pub enum Color {
    Red,
    Green,
}

/// A running spinner (see [`Out::progress`]); cleared when dropped.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Say what the operation is doing now.
    pub fn set(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_owned());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
