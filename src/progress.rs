//! Progress on stderr. Builds: step headers and warnings (`plain`), nothing but errors
//! (`quiet`); `auto` is `plain`, and nothing printed depends on timing. Blob transfers: live
//! bars when `auto` and stderr is a terminal, else one line per blob moved (`plain`), or
//! nothing (`quiet`).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_normalize::image::Phase;
use kiln_normalize::NormalizedLayer;
use kiln_registry::{Digest, Direction};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Plain,
    Quiet,
}

/// `--progress MODE` and its short form `-q/--quiet`, shared by every command that reports
/// progress.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct ProgressArgs {
    /// Progress output on stderr: `auto` (live bars for blob transfers on a terminal, else as
    /// `plain`), `plain` (one line per step or blob) or `quiet` (errors only). The summary
    /// always goes to stdout.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,

    /// Same as --progress quiet
    #[arg(short, long, conflicts_with = "progress")]
    quiet: bool,
}

impl ProgressArgs {
    pub fn mode(&self) -> ProgressMode {
        if self.quiet {
            ProgressMode::Quiet
        } else {
            self.progress
        }
    }
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

/// Progress of blob downloads and uploads, for the registry client: bars on a terminal in
/// `auto` mode, one line per finished blob in `plain` mode (and in `auto` mode when stderr is
/// not a terminal), nothing in `quiet` mode.
pub fn transfers(mode: ProgressMode) -> Option<Arc<dyn kiln_registry::Progress>> {
    match mode {
        ProgressMode::Quiet => None,
        ProgressMode::Auto if std::io::stderr().is_terminal() => Some(Arc::new(Bars::new())),
        ProgressMode::Auto | ProgressMode::Plain => Some(Arc::new(Lines::default())),
    }
}

fn verb(direction: Direction) -> &'static str {
    match direction {
        Direction::Pull => "downloaded",
        Direction::Push => "uploaded",
    }
}

/// The line printed when a blob has moved.
fn done_line(direction: Direction, digest: &Digest, bytes: u64) -> String {
    format!("{} {digest} ({bytes} bytes)", verb(direction))
}

/// One line per blob that moved, when it has; no timing, no control characters.
#[derive(Default)]
struct Lines {
    /// Bytes moved so far, per transfer.
    done: Mutex<BTreeMap<(u8, Digest), u64>>,
}

fn key(direction: Direction, digest: &Digest) -> (u8, Digest) {
    (direction as u8, *digest)
}

impl kiln_registry::Progress for Lines {
    fn update(&self, direction: Direction, digest: &Digest, done: u64, _total: Option<u64>) {
        if let Ok(mut m) = self.done.lock() {
            m.insert(key(direction, digest), done);
        }
    }

    fn finish(&self, direction: Direction, digest: &Digest, ok: bool) {
        let done = self
            .done
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&key(direction, digest)));
        if let (true, Some(bytes)) = (ok, done) {
            eprintln!("{}", done_line(direction, digest, bytes));
        }
    }
}

/// Live bars on stderr (indicatif), one per key in flight.
struct BarSet<K> {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<K, ProgressBar>>,
}

impl<K: Ord> BarSet<K> {
    fn new() -> BarSet<K> {
        BarSet {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn style(known_total: bool) -> ProgressStyle {
        let template = if known_total {
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
        } else {
            "{prefix} {spinner} {bytes} {bytes_per_sec}"
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// Shows `done` bytes (of `total`, once known) on `key`'s bar, labelled `prefix`. A new
    /// prefix is a new phase: the count and rate start again.
    fn update(&self, key: K, prefix: String, done: u64, total: Option<u64>) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(key).or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden())
                .with_style(Self::style(total.is_some()))
                .with_prefix(prefix.clone());
            self.multi.add(bar)
        });
        if bar.prefix() != prefix {
            bar.reset();
            bar.set_style(Self::style(total.is_some()));
            bar.set_prefix(prefix);
            match total {
                Some(t) => bar.set_length(t),
                None => bar.unset_length(),
            }
        } else if let Some(t) = total {
            if bar.length() != Some(t) {
                bar.set_style(Self::style(true));
                bar.set_length(t);
            }
        }
        bar.set_position(done);
    }

    /// Takes `key`'s bar off the screen; the bytes it had shown.
    fn finish(&self, key: &K) -> Option<u64> {
        let bar = self.bars.lock().ok()?.remove(key)?;
        let bytes = bar.position();
        bar.finish_and_clear();
        self.multi.remove(&bar);
        Some(bytes)
    }

    /// A line above the bars.
    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

/// A bar per blob in flight, replaced by its done line when it finishes.
struct Bars(BarSet<(u8, Digest)>);

impl Bars {
    fn new() -> Bars {
        Bars(BarSet::new())
    }
}

impl kiln_registry::Progress for Bars {
    fn update(&self, direction: Direction, digest: &Digest, done: u64, total: Option<u64>) {
        let arrow = match direction {
            Direction::Pull => "↓",
            Direction::Push => "↑",
        };
        let hex = digest.hex();
        let prefix = format!("{arrow} {}", &hex[..hex.len().min(12)]);
        self.0.update(key(direction, digest), prefix, done, total);
    }

    fn finish(&self, direction: Direction, digest: &Digest, ok: bool) {
        if let (Some(bytes), true) = (self.0.finish(&key(direction, digest)), ok) {
            self.0.println(&done_line(direction, digest, bytes));
        }
    }
}

/// Progress of `kiln normalize`: one line per finished layer, in layer order whichever
/// worker finishes first (`plain`, and `auto` off a terminal), nothing (`quiet`); in `auto`
/// mode on a terminal also a live bar per layer in flight, reading then writing.
pub struct LayerProgress {
    quiet: bool,
    /// The next layer to print, and finished layers waiting for it.
    pending: Mutex<(usize, BTreeMap<usize, String>)>,
    bars: Option<BarSet<usize>>,
}

impl LayerProgress {
    pub fn new(mode: ProgressMode) -> LayerProgress {
        LayerProgress {
            quiet: mode == ProgressMode::Quiet,
            pending: Mutex::new((0, BTreeMap::new())),
            bars: (mode == ProgressMode::Auto && std::io::stderr().is_terminal()).then(BarSet::new),
        }
    }

    fn print(&self, text: &str) {
        match &self.bars {
            Some(b) => b.println(text.trim_end()),
            None => eprint!("{text}"),
        }
    }
}

impl kiln_normalize::image::Progress for LayerProgress {
    fn layer_bytes(&self, index: usize, phase: Phase, done: u64) {
        let Some(b) = &self.bars else { return };
        let (label, total) = match phase {
            Phase::Reading { total } => ("reading", Some(total)),
            Phase::Writing => ("writing", None),
        };
        b.update(index, format!("layer {} {label}", index + 1), done, total);
    }

    fn layer_done(&self, index: usize, total: usize, l: &NormalizedLayer) {
        if let Some(b) = &self.bars {
            b.finish(&index);
        }
        if self.quiet {
            return;
        }
        let mut text = format!(
            "#normalized layer {}/{total}: {} entries, {} mtimes clamped, {} hard links\n",
            index + 1,
            l.stats.entries_written,
            l.stats.mtimes_clamped,
            l.stats.hardlinks
        );
        for s in &l.stats.scrubbed {
            text.push_str(&format!("  scrub {}: {} {}\n", s.rule, s.action, s.path));
        }
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        p.1.insert(index, text);
        loop {
            let next = p.0;
            let Some(t) = p.1.remove(&next) else { break };
            self.print(&t);
            p.0 += 1;
        }
    }
}
