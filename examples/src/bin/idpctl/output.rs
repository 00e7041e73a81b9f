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
