//! Build progress on stderr: step headers and warnings (`plain`), nothing but errors
//! (`quiet`). `auto` is `plain`; kiln never prints anything that depends on timing.

use std::io::Write;

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Plain,
    Quiet,
}

pub struct Printer {
    mode: ProgressMode,
}

impl Printer {
    pub fn new(mode: ProgressMode) -> Printer {
        Printer { mode }
    }

    pub fn quiet(&self) -> bool {
        self.mode == ProgressMode::Quiet
    }
}

impl kiln_build::Progress for Printer {
    fn step(&self, header: &str) {
        if !self.quiet() {
            eprintln!("#{header}");
        }
    }

    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn output(&self, bytes: &[u8]) {
        if !self.quiet() {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(bytes);
        }
    }
}
