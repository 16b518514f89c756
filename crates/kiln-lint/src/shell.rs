//! A small POSIX-shell reader: splits the text of a `RUN` into simple
//! commands so that rules look at `apt-get install -y curl` rather than at
//! substrings of the whole line.
//!
//! It is not a shell: it knows quoting, escapes, `$(...)`/backtick command
//! substitutions (whose commands are read too), `${...}` and `$((...))`,
//! the control operators `&&`, `||`, `;`, `|`, `&`, newlines and parentheses,
//! redirections, heredocs and comments. Compound-command keywords (`if`,
//! `then`, `do`, ...) are dropped, and wrappers such as `sudo`, `env VAR=1`
//! or `sh -c '...'` are looked through, so that what is left is the program
//! that really runs. Expansions are never performed: words keep `$VAR`
//! verbatim and say that they are [`Word::dynamic`].

/// One shell word, quotes removed, expansions kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word with quoting removed; `$VAR`, `${...}`, `$(...)` and
    /// backticks are kept verbatim.
    pub text: String,
    /// The word contains an expansion, so its value is only known at run time.
    pub dynamic: bool,
}

impl Word {
    fn literal(text: &str) -> Word {
        Word {
            text: text.to_string(),
            dynamic: false,
        }
    }

    /// Whether the word mentions the variable `name` (`$name` or `${name...}`).
    pub fn mentions_var(&self, name: &str) -> bool {
        mentions_var(&self.text, name)
    }
}

/// Whether `text` references variable `name` as `$name` or `${name...}`.
pub fn mentions_var(text: &str, name: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find('$') {
        let at = i + off + 1;
        let rest = &text[at..];
        if let Some(r) = rest.strip_prefix('{') {
            if r.starts_with(name) && !r[name.len()..].starts_with(is_ident_char) {
                return true;
            }
        } else if rest.starts_with(name)
            && !b
                .get(at + name.len())
                .is_some_and(|&c| is_ident_char(c as char))
        {
            return true;
        }
        i = at;
    }
    false
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A redirection such as `> /out.txt`, `2>&1` or `<<EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The operator without its file descriptor (`>`, `>>`, `<`, `<<`, `<<-`, `>&`, ...).
    pub op: String,
    /// The target word (the delimiter for heredocs).
    pub target: Word,
    /// A heredoc's body.
    pub body: Option<String>,
}

/// A `NAME=value` before the command (or given to `env`/`export`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The variable name.
    pub name: String,
    /// The value.
    pub value: Word,
}

/// One simple command: assignments, the program and its arguments, redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// Variable assignments written before the program (and `env NAME=value`).
    pub assignments: Vec<Assignment>,
    /// The program and its arguments (wrappers like `sudo` removed).
    pub words: Vec<Word>,
    /// Redirections.
    pub redirects: Vec<Redirect>,
    /// The command runs inside a `$(...)` or backtick substitution.
    pub in_substitution: bool,
    /// The command's standard output goes into a pipe.
    pub piped: bool,
    /// Run through `xargs`: more arguments come from standard input.
    pub more_args_from_stdin: bool,
}

impl SimpleCommand {
    /// The program's base name (`/usr/bin/apt-get` → `apt-get`), or "" for a
    /// command that is only assignments or redirections.
    pub fn name(&self) -> &str {
        match self.words.first() {
            Some(w) => w.text.rsplit('/').next().unwrap_or(""),
            None => "",
        }
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }

    /// Whether any argument is exactly `flag`.
    pub fn has_arg(&self, flag: &str) -> bool {
        self.args().iter().any(|w| w.text == flag)
    }

    /// Whether standard output is redirected to a file.
    pub fn stdout_to_file(&self) -> bool {
        self.redirects
            .iter()
            .any(|r| matches!(r.op.as_str(), ">" | ">>" | ">|" | "&>" | "&>>"))
    }
}

/// The commands of a script, in the order they start, plus its comments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// Every simple command, including those in substitutions and in
    /// `sh -c` strings.
    pub commands: Vec<SimpleCommand>,
    /// The text of every `#` comment, without the `#`, trimmed.
    pub comments: Vec<String>,
}

/// Reads `text` as a shell script.
pub fn parse(text: &str) -> Script {
    let mut script = Script::default();
    parse_into(text, false, 0, &mut script);
    script
}

/// The script of an exec-form command (`RUN ["apt-get", "install", "x"]`):
/// one command whose words are taken as they are.
pub fn from_argv(argv: &[String]) -> Script {
    let mut script = Script::default();
    let cmd = SimpleCommand {
        words: argv
            .iter()
            .map(|a| Word {
                text: a.clone(),
                dynamic: false,
            })
            .collect(),
        ..SimpleCommand::default()
    };
    push_command(cmd, 0, &mut script);
    script
}

/// How deep `sh -c` strings and substitutions are followed.
const MAX_DEPTH: usize = 8;

fn parse_into(text: &str, in_substitution: bool, depth: usize, out: &mut Script) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut p = Reader {
        chars: text.chars().collect(),
        pos: 0,
        in_substitution,
        out: Vec::new(),
        comments: Vec::new(),
        nested: Vec::new(),
    };
    p.run();
    // Substitutions run before the command that contains them.
    let Reader {
        out: commands,
        comments,
        nested,
        ..
    } = p;
    out.comments.extend(comments);
    let mut nested = nested.into_iter().peekable();
    for (i, cmd) in commands.into_iter().enumerate() {
        while let Some((_, sub)) = nested.next_if(|(at, _)| *at <= i) {
            parse_into(&sub, true, depth + 1, out);
        }
        push_command(cmd, depth, out);
    }
    for (_, sub) in nested {
        parse_into(&sub, true, depth + 1, out);
    }
}

/// Adds a finished command, looking through wrappers and `sh -c`.
fn push_command(mut cmd: SimpleCommand, depth: usize, out: &mut Script) {
    strip_keywords(&mut cmd);
    unwrap_wrappers(&mut cmd);
    if cmd.words.is_empty() && cmd.assignments.is_empty() && cmd.redirects.is_empty() {
        return;
    }
    let inner = shell_string(&cmd);
    let stdin_script = if is_shell(cmd.name()) && inner.is_none() {
        cmd.redirects
            .iter()
            .find(|r| r.op.starts_with("<<") && r.op != "<<<")
            .and_then(|r| r.body.clone())
    } else {
        None
    };
    let in_sub = cmd.in_substitution;
    out.commands.push(cmd);
    if let Some(text) = inner.or(stdin_script) {
        parse_into(&text, in_sub, depth + 1, out);
    }
}

/// Shells whose `-c` string or heredoc standard input is itself a script.
pub fn is_shell(name: &str) -> bool {
    matches!(
        name,
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh" | "busybox-sh"
    )
}

/// The script of `sh -c 'script'` (also `bash -ec`, `sh -xc`, ...).
fn shell_string(cmd: &SimpleCommand) -> Option<String> {
    if !is_shell(cmd.name()) {
        return None;
    }
    let mut args = cmd.args().iter();
    let mut want_c = false;
    for a in args.by_ref() {
        let t = a.text.as_str();
        if t == "-o" || t == "+o" {
            // `-o pipefail`: the option name follows.
            continue;
        }
        if let Some(flags) = t.strip_prefix('-') {
            if !flags.starts_with('-') && flags.contains('c') {
                want_c = true;
                break;
            }
            continue;
        }
        if matches!(t, "pipefail" | "errexit" | "nounset" | "xtrace") {
            continue;
        }
        return None;
    }
    if !want_c {
        return None;
    }
    args.next().filter(|w| !w.dynamic).map(|w| w.text.clone())
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac",
];

/// Drops leading compound-command keywords; `for`/`case`/`select` headers
/// and function definitions are not commands at all.
fn strip_keywords(cmd: &mut SimpleCommand) {
    let skip = cmd
        .words
        .iter()
        .take_while(|w| !w.dynamic && KEYWORDS.contains(&w.text.as_str()))
        .count();
    cmd.words.drain(..skip);
    if let Some(first) = cmd.words.first() {
        if matches!(first.text.as_str(), "for" | "case" | "select" | "function")
            || first.text.ends_with("()")
        {
            cmd.words.clear();
        }
    }
}

/// Removes `sudo`, `env`, `exec`, `nohup`, `time`, `nice`, `timeout`,
/// `xargs`, `command` in front of the real program.
fn unwrap_wrappers(cmd: &mut SimpleCommand) {
    loop {
        let name = cmd.name().to_string();
        let args: Vec<String> = cmd.args().iter().map(|w| w.text.clone()).collect();
        // How many words to drop (the wrapper and its options).
        let drop = match name.as_str() {
            "exec" | "nohup" | "builtin" => 1,
            "command" => {
                if args.first().is_some_and(|a| a == "-v" || a == "-V") {
                    cmd.words.clear();
                    return;
                }
                1 + args.iter().take_while(|a| *a == "-p").count()
            }
            "time" => 1 + args.iter().take_while(|a| a.starts_with('-')).count(),
            "sudo" => {
                1 + options_len(
                    &args,
                    &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"],
                )
            }
            "nice" | "ionice" => 1 + options_len(&args, &["-n", "-c"]),
            "stdbuf" => 1 + options_len(&args, &["-i", "-o", "-e"]),
            "timeout" => {
                let opts = options_len(&args, &["-s", "-k", "--signal", "--kill-after"]);
                // The duration follows the options.
                1 + opts + usize::from(args.len() > opts)
            }
            "xargs" => {
                cmd.more_args_from_stdin = true;
                1 + options_len(
                    &args,
                    &[
                        "-n",
                        "-P",
                        "-I",
                        "-d",
                        "-a",
                        "-L",
                        "-s",
                        "-E",
                        "--arg-file",
                        "--delimiter",
                    ],
                )
            }
            "env" => {
                let mut n = 1;
                let mut it = args.iter();
                while let Some(a) = it.next() {
                    if a == "-u" || a == "-C" || a == "--unset" || a == "--chdir" {
                        it.next();
                        n += 2;
                    } else if a.starts_with('-') {
                        n += 1;
                    } else if let Some((k, _)) = a.split_once('=') {
                        if !k.is_empty() && k.chars().all(is_ident_char) {
                            let value = cmd.words[n].text[k.len() + 1..].to_string();
                            let dynamic = cmd.words[n].dynamic;
                            cmd.assignments.push(Assignment {
                                name: k.to_string(),
                                value: Word {
                                    text: value,
                                    dynamic,
                                },
                            });
                        }
                        n += 1;
                    } else {
                        break;
                    }
                }
                n
            }
            _ => return,
        };
        let drop = drop.min(cmd.words.len());
        cmd.words.drain(..drop);
        if cmd.words.is_empty() {
            return;
        }
    }
}

/// Number of leading option words in `args` (up to `--`), where options in
/// `with_value` take the next word as their value.
fn options_len(args: &[String], with_value: &[&str]) -> usize {
    let mut n = 0;
    while n < args.len() {
        let a = args[n].as_str();
        if a == "--" {
            return n + 1;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        n += if with_value.contains(&a) { 2 } else { 1 };
    }
    n.min(args.len())
}

struct Reader {
    chars: Vec<char>,
    pos: usize,
    in_substitution: bool,
    out: Vec<SimpleCommand>,
    comments: Vec<String>,
    /// Substitution bodies with the index of the command they belong to.
    nested: Vec<(usize, String)>,
}

/// A word being read, with whether its `=` (if any) came before any quoting.
struct RawWord {
    word: Word,
    /// Position of the first unquoted `=` in `word.text`, if everything
    /// before it was plain, unquoted text.
    assign_at: Option<usize>,
    any_quote: bool,
}

impl Reader {
    fn peek(&self, off: usize) -> Option<char> {
        self.chars.get(self.pos + off).copied()
    }

    fn run(&mut self) {
        let mut cmd = SimpleCommand {
            in_substitution: self.in_substitution,
            ..SimpleCommand::default()
        };
        // Heredocs waiting for their body: (command index or None for the
        // current command, redirect index).
        let mut pending: Vec<(Option<usize>, usize, bool)> = Vec::new();
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\r' => self.pos += 1,
                '\\' if self.peek(1) == Some('\n') => self.pos += 2,
                '#' => {
                    let start = self.pos + 1;
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                    let text: String = self.chars[start..self.pos].iter().collect();
                    self.comments.push(text.trim().to_string());
                }
                '\n' => {
                    self.pos += 1;
                    self.finish(&mut cmd, false);
                    self.read_heredoc_bodies(&mut pending);
                }
                ';' | '&' | '|' | '(' | ')' => {
                    if c == '&' && self.peek(1) == Some('>') {
                        self.redirect(&mut cmd, &mut pending);
                        continue;
                    }
                    let pipe = c == '|' && self.peek(1) != Some('|');
                    self.pos += 1;
                    if matches!(self.peek(0), Some(n) if n == c || (c == '|' && n == '&')) {
                        self.pos += 1;
                    }
                    self.finish(&mut cmd, pipe);
                }
                '<' | '>' => self.redirect(&mut cmd, &mut pending),
                _ => {
                    let raw = self.word();
                    // `2>file`: a number right before a redirection is its descriptor.
                    if !raw.any_quote
                        && !raw.word.text.is_empty()
                        && raw.word.text.chars().all(|c| c.is_ascii_digit())
                        && matches!(self.peek(0), Some('<' | '>'))
                    {
                        continue;
                    }
                    if let Some(at) = raw.assign_at.filter(|_| cmd.words.is_empty()) {
                        let text = raw.word.text;
                        cmd.assignments.push(Assignment {
                            name: text[..at].to_string(),
                            value: Word {
                                text: text[at + 1..].to_string(),
                                dynamic: raw.word.dynamic,
                            },
                        });
                    } else {
                        cmd.words.push(raw.word);
                    }
                }
            }
        }
        self.finish(&mut cmd, false);
        self.read_heredoc_bodies(&mut pending);
    }

    /// Ends the current command (if it has anything) and starts a new one.
    fn finish(&mut self, cmd: &mut SimpleCommand, piped: bool) {
        let mut done = std::mem::replace(
            cmd,
            SimpleCommand {
                in_substitution: self.in_substitution,
                ..SimpleCommand::default()
            },
        );
        if done.words.is_empty() && done.assignments.is_empty() && done.redirects.is_empty() {
            return;
        }
        done.piped = piped;
        self.out.push(done);
    }

    fn redirect(
        &mut self,
        cmd: &mut SimpleCommand,
        pending: &mut Vec<(Option<usize>, usize, bool)>,
    ) {
        let mut op = String::new();
        while let Some(c) = self.peek(0) {
            let next = format!("{op}{c}");
            let known = [
                "<", "<<", "<<-", "<<<", "<&", "<>", ">", ">>", ">&", ">|", "&", "&>", "&>>",
            ];
            if known.contains(&next.as_str()) {
                op = next;
                self.pos += 1;
            } else {
                break;
            }
        }
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.pos += 1;
        }
        let target = if matches!(
            self.peek(0),
            None | Some('\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>')
        ) {
            Word::literal("")
        } else {
            self.word().word
        };
        let heredoc = op == "<<" || op == "<<-";
        cmd.redirects.push(Redirect {
            op: op.clone(),
            target,
            body: None,
        });
        if heredoc {
            // The command is still being read: its index is the next one.
            pending.push((Some(self.out.len()), cmd.redirects.len() - 1, op == "<<-"));
        }
    }

    fn read_heredoc_bodies(&mut self, pending: &mut Vec<(Option<usize>, usize, bool)>) {
        for (cmd_idx, redir_idx, strip_tabs) in pending.drain(..) {
            let Some(cmd) = cmd_idx.and_then(|i| self.out.get(i)) else {
                continue;
            };
            let delim = cmd.redirects[redir_idx].target.text.clone();
            let mut body = String::new();
            while self.pos < self.chars.len() {
                let start = self.pos;
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
                let line: String = self.chars[start..self.pos].iter().collect();
                if self.peek(0) == Some('\n') {
                    self.pos += 1;
                }
                let check = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if check == delim {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            if let Some(cmd) = cmd_idx.and_then(|i| self.out.get_mut(i)) {
                cmd.redirects[redir_idx].body = Some(body);
            }
        }
    }

    /// Reads one word at the current position.
    fn word(&mut self) -> RawWord {
        let mut w = RawWord {
            word: Word::literal(""),
            assign_at: None,
            any_quote: false,
        };
        let mut plain_so_far = true;
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\\' => {
                    self.pos += 1;
                    match self.peek(0) {
                        Some('\n') => self.pos += 1,
                        Some(n) => {
                            w.word.text.push(n);
                            self.pos += 1;
                        }
                        None => {}
                    }
                    plain_so_far = false;
                    w.any_quote = true;
                }
                '\'' => {
                    self.pos += 1;
                    while let Some(n) = self.peek(0) {
                        self.pos += 1;
                        if n == '\'' {
                            break;
                        }
                        w.word.text.push(n);
                    }
                    plain_so_far = false;
                    w.any_quote = true;
                }
                '"' => {
                    self.pos += 1;
                    self.double_quoted(&mut w.word);
                    plain_so_far = false;
                    w.any_quote = true;
                }
                '$' => {
                    self.dollar(&mut w.word);
                    plain_so_far = false;
                }
                '`' => {
                    self.backtick(&mut w.word);
                    plain_so_far = false;
                }
                _ => {
                    if c == '='
                        && plain_so_far
                        && w.assign_at.is_none()
                        && !w.word.text.is_empty()
                        && !w.word.text.starts_with(|c: char| c.is_ascii_digit())
                        && w.word.text.chars().all(is_ident_char)
                    {
                        w.assign_at = Some(w.word.text.len());
                    }
                    w.word.text.push(c);
                    self.pos += 1;
                }
            }
        }
        w
    }

    fn double_quoted(&mut self, w: &mut Word) {
        while let Some(c) = self.peek(0) {
            match c {
                '"' => {
                    self.pos += 1;
                    return;
                }
                '\\' => {
                    self.pos += 1;
                    match self.peek(0) {
                        Some('\n') => self.pos += 1,
                        Some(n @ ('$' | '`' | '"' | '\\')) => {
                            w.text.push(n);
                            self.pos += 1;
                        }
                        Some(_) => w.text.push('\\'),
                        None => {}
                    }
                }
                '$' => self.dollar(w),
                '`' => self.backtick(w),
                _ => {
                    w.text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `$NAME`, `${...}`, `$(...)`, `$((...))`, `$'...'`; kept verbatim.
    fn dollar(&mut self, w: &mut Word) {
        let start = self.pos;
        self.pos += 1;
        match self.peek(0) {
            Some('(') if self.peek(1) == Some('(') => {
                self.pos = self.matching(self.pos, '(', ')');
                w.dynamic = true;
            }
            Some('(') => {
                let open = self.pos;
                self.pos = self.matching(open, '(', ')');
                let end = self.pos.saturating_sub(1).max(open + 1);
                let body: String = self.chars[open + 1..end].iter().collect();
                self.nested.push((self.out.len(), body));
                w.dynamic = true;
            }
            Some('{') => {
                self.pos = self.matching(self.pos, '{', '}');
                w.dynamic = true;
            }
            Some('\'') => {
                // ANSI-C quoting: keep the content, escapes unprocessed.
                self.pos += 1;
                let from = self.pos;
                while let Some(n) = self.peek(0) {
                    self.pos += 1;
                    if n == '\\' {
                        self.pos += 1;
                    } else if n == '\'' {
                        break;
                    }
                }
                let end = self.pos.saturating_sub(1).max(from).min(self.chars.len());
                w.text.extend(&self.chars[from..end]);
                return;
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                while self.peek(0).is_some_and(is_ident_char) {
                    self.pos += 1;
                }
                w.dynamic = true;
            }
            Some(c) if c.is_ascii_digit() || "?$#@*!-".contains(c) => {
                self.pos += 1;
                w.dynamic = true;
            }
            _ => {}
        }
        let end = self.pos.min(self.chars.len());
        w.text.extend(&self.chars[start..end]);
    }

    fn backtick(&mut self, w: &mut Word) {
        let start = self.pos;
        self.pos += 1;
        let mut body = String::new();
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match c {
                '`' => break,
                '\\' => {
                    if let Some(n) = self.peek(0) {
                        if !matches!(n, '`' | '\\' | '$') {
                            body.push('\\');
                        }
                        body.push(n);
                        self.pos += 1;
                    }
                }
                _ => body.push(c),
            }
        }
        self.nested.push((self.out.len(), body));
        let end = self.pos.min(self.chars.len());
        w.text.extend(&self.chars[start..end]);
        w.dynamic = true;
    }

    /// The position after the bracket closing the one at `open`, skipping
    /// quoted text (or the end of the text when it is never closed).
    fn matching(&self, open: usize, o: char, c: char) -> usize {
        let mut depth = 0usize;
        let mut i = open;
        while i < self.chars.len() {
            let ch = self.chars[i];
            match ch {
                '\\' => i += 1,
                '\'' if o == '(' => {
                    i += 1;
                    while i < self.chars.len() && self.chars[i] != '\'' {
                        i += 1;
                    }
                }
                '"' => {
                    i += 1;
                    while i < self.chars.len() && self.chars[i] != '"' {
                        if self.chars[i] == '\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                _ if ch == o => depth += 1,
                _ if ch == c => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.chars.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &Script) -> Vec<String> {
        s.commands
            .iter()
            .map(|c| {
                c.words
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn splits_on_operators_and_newlines() {
        let s = parse("apt-get update && apt-get install -y curl=7.88.1-10; echo a | tee b || true\nls & wait");
        assert_eq!(
            names(&s),
            [
                "apt-get update",
                "apt-get install -y curl=7.88.1-10",
                "echo a",
                "tee b",
                "true",
                "ls",
                "wait"
            ]
        );
        assert!(s.commands[2].piped);
        assert!(!s.commands[3].piped);
    }

    #[test]
    fn quotes_escapes_and_assignments() {
        let s = parse(r#"FOO=1 BAR="a b" cmd 'x y' "z\"q" a\ b X=2"#);
        let c = &s.commands[0];
        assert_eq!(c.assignments.len(), 2);
        assert_eq!(c.assignments[1].name, "BAR");
        assert_eq!(c.assignments[1].value.text, "a b");
        let words: Vec<_> = c.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, ["cmd", "x y", "z\"q", "a b", "X=2"]);
    }

    #[test]
    fn substitutions_are_read_first() {
        let s = parse(r#"echo "Built at $(date -u)" > /b.txt && X=`uuidgen`"#);
        assert_eq!(
            names(&s),
            ["date -u", "echo Built at $(date -u)", "uuidgen", ""]
        );
        assert!(s.commands[0].in_substitution);
        assert!(s.commands[1].stdout_to_file());
        assert!(s.commands[1].words[1].dynamic);
        assert_eq!(s.commands[3].assignments[0].name, "X");
    }

    #[test]
    fn keywords_wrappers_and_sh_c() {
        let s = parse(
            "if [ -f x ]; then sudo -u root env -i A=1 apt-get install y; fi; for i in a b; do nice -n 5 date; done; sh -ec 'go build ./...'",
        );
        assert_eq!(
            names(&s),
            [
                "[ -f x ]",
                "apt-get install y",
                "date",
                "sh -ec go build ./...",
                "go build ./..."
            ]
        );
        assert_eq!(s.commands[1].assignments[0].name, "A");
    }

    #[test]
    fn comments_and_heredocs() {
        let s = parse(
            "cat <<EOF > /etc/x # kiln:ignore=KL009\ndate\nEOF\nbash <<'S'\nuseradd app\nS\n",
        );
        assert_eq!(s.comments, ["kiln:ignore=KL009"]);
        assert_eq!(names(&s), ["cat", "bash", "useradd app"]);
        assert_eq!(s.commands[0].redirects[0].body.as_deref(), Some("date\n"));
    }

    #[test]
    fn redirect_fds_and_arith() {
        let s = parse("make 2>&1 >/dev/null; echo $((1+2)) ${A:-x}");
        assert_eq!(names(&s), ["make", "echo $((1+2)) ${A:-x}"]);
        assert_eq!(s.commands[0].redirects.len(), 2);
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for t in [
            "echo \"abc",
            "echo 'x",
            "$(date",
            "`x",
            "${a",
            "a <<",
            "cat <<E\nbody",
            "\\",
            "$",
        ] {
            let _ = parse(t);
        }
    }

    #[test]
    fn finds_variable_mentions() {
        assert!(mentions_var("$TMP/x", "TMP"));
        assert!(mentions_var("${TMP:-/tmp}", "TMP"));
        assert!(!mentions_var("$TMPDIR", "TMP"));
        assert!(!mentions_var("TMP", "TMP"));
    }
}
