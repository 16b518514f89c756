//! Random and mutated input never panics: every failure is an error value.

use kiln_dockerfile::*;
use kiln_testkit::rng::Rng;

const FRAGMENTS: &[&str] = &[
    "FROM ",
    "scratch",
    " AS ",
    "build",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "WORKDIR ",
    "USER ",
    "EXPOSE ",
    "VOLUME ",
    "STOPSIGNAL ",
    "SHELL ",
    "HEALTHCHECK ",
    "ONBUILD ",
    "CMD ",
    "ENTRYPOINT ",
    "MAINTAINER ",
    "--from=",
    "--chown=",
    "--mount=",
    "type=cache,target=/c",
    "--network=",
    "--interval=",
    "CMD ",
    "NONE",
    "\n",
    "\n",
    "\n",
    " ",
    " ",
    "\\\n",
    "`\n",
    "# escape=`\n",
    "# syntax=x\n",
    "#",
    "\"",
    "'",
    "[",
    "]",
    "\",\"",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    "?",
    "#",
    "%",
    "/",
    "//",
    "<<EOF",
    "<<-'E'",
    "EOF\n",
    "E\n",
    "\t",
    "=",
    "a",
    "b",
    "0",
    "1",
    "\u{feff}",
    "é",
    "\r\n",
    "{",
    "*",
    "\\",
    ";",
    "!",
    "..",
    "1e400",
    "null",
];

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(40);
    (0..n)
        .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
        .collect()
}

fn exercise(text: &str) {
    let df = match parse(text, "Dockerfile") {
        Ok(df) => df,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("Dockerfile:"), "{msg}");
            assert!(e.line >= 1 && e.end_line >= e.line, "{e:?}");
            return;
        }
    };
    let lex = df.lexer();
    let env = EnvList::from_list(["a=1", "b=", "EOF=x"]);
    for st in &df.stages {
        let _ = st.from.expand(&lex, &env);
        for c in &st.commands {
            let _ = c.instruction.expand(&lex, &env);
        }
    }
    if let Ok(meta) = df.meta_env(&EnvList::new(), &Default::default()) {
        if let Ok(g) = StageGraph::new(&df, &meta) {
            for t in 0..g.len() {
                let _ = g.dependencies(t);
                let _ = g.images(t);
            }
        }
    }
}

#[test]
fn random_dockerfiles_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let text = random_text(&mut rng);
        exercise(&text);
        exercise(&format!("FROM scratch\n{text}"));
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/dockerfile/fixtures");
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path().join("Dockerfile");
        if p.is_file() {
            texts.push(std::fs::read_to_string(p).unwrap());
        }
    }
    texts.sort();
    assert!(texts.len() >= 12);
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let base = &texts[rng.below(texts.len())];
        let mut chars: Vec<char> = base.chars().collect();
        for _ in 0..1 + rng.below(6) {
            let pos = rng.below(chars.len() + 1);
            match rng.below(3) {
                0 if pos < chars.len() => {
                    chars.remove(pos);
                }
                _ => {
                    let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
                    for (k, c) in frag.chars().enumerate() {
                        chars.insert(pos + k, c);
                    }
                }
            }
        }
        exercise(&chars.into_iter().collect::<String>());
    }
}

#[test]
fn random_words_and_ignore_patterns_never_panic() {
    let mut rng = Rng(7);
    let lexers = [
        Lexer::new('\\'),
        Lexer::new('`'),
        Lexer::new('\\')
            .raw_quotes(true)
            .raw_escapes(true)
            .skip_unset_env(true),
        Lexer::new('\\').skip_process_quotes(true),
    ];
    let env = EnvList::from_list(["a=xay", "b=", "EOF=x"]);
    let pieces = [
        "a", "b", "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "'", "\"", "*", "`", " ",
        "é", "\u{feff}",
    ];
    let path_pieces = [
        "a", "b", "/", "*", "**", "?", "[", "]", "^", "-", "!", "\\", ".", "..", "é", " ", "\n",
        "{", "(", "$",
    ];
    for _ in 0..5000 {
        let w: String = (0..rng.below(14))
            .map(|_| pieces[rng.below(pieces.len())])
            .collect();
        for lex in &lexers {
            let _ = lex.process_word(&w, &env);
            let _ = lex.process_words(&w, &env);
        }
        let pattern: String = (0..rng.below(10))
            .map(|_| path_pieces[rng.below(path_pieces.len())])
            .collect();
        if let Ok(m) = IgnoreMatcher::parse(&pattern) {
            let path: String = (0..1 + rng.below(6))
                .map(|_| ["a", "b", "/", "é", ".x"][rng.below(5)])
                .collect();
            let _ = m.is_excluded(path.trim_matches('/'), rng.below(2) == 0);
            let _ = m.matches_or_parent_matches(&path);
        }
    }
}
