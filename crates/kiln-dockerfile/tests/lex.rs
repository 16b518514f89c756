//! The shell lexer against BuildKit v0.19.0's own lexer test cases
//! (frontend/dockerfile/shell: envVarTest, wordsTest, lex_test.go),
//! restated as tables here.

use kiln_dockerfile::{EnvList, Lexer};
use std::collections::BTreeSet;

fn env() -> EnvList {
    EnvList::from_list(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="])
}

/// `None` means BuildKit returns an error.
const WORD_CASES: &[(&str, Option<&str>)] = &[
    ("hello", Some("hello")),
    ("he'll'o", Some("hello")),
    ("he'llo", None),
    ("he\\'llo", Some("he'llo")),
    ("he\\\\'llo", None),
    ("abc\\tdef", Some("abctdef")),
    ("\"abc\\tdef\"", Some("abc\\tdef")),
    ("\"abc\\\\tdef\"", Some("abc\\tdef")),
    ("'abc\\tdef'", Some("abc\\tdef")),
    ("hello\\", Some("hello")),
    ("hello\\\\", Some("hello\\")),
    ("\"hello", None),
    ("\"hello\\\"", None),
    ("\"hel'lo\"", Some("hel'lo")),
    ("'hello", None),
    ("'hello\\'", Some("hello\\")),
    ("'hello\\there'", Some("hello\\there")),
    ("'hello\\\\there'", Some("hello\\\\there")),
    ("\"''\"", Some("''")),
    ("$.", Some("$.")),
    ("he$1x", Some("hex")),
    ("he$.x", Some("he$.x")),
    ("he$pwd.", Some("he.")),
    ("he$PWD", Some("he/home")),
    ("he\\$PWD", Some("he$PWD")),
    ("he\\\\$PWD", Some("he\\/home")),
    ("\"he\\$PWD\"", Some("he$PWD")),
    ("\"he\\\\$PWD\"", Some("he\\/home")),
    ("\\${}", Some("${}")),
    ("\\${}aaa", Some("${}aaa")),
    ("he\\${}", Some("he${}")),
    ("he\\${}xx", Some("he${}xx")),
    ("${}", None),
    ("${}aaa", None),
    ("he${}", None),
    ("he${}xx", None),
    ("he${hi}", Some("he")),
    ("he${hi}xx", Some("hexx")),
    ("he${PWD}", Some("he/home")),
    ("he${.}", None),
    ("he${XXX:-000}xx", Some("he000xx")),
    ("he${PWD:-000}xx", Some("he/homexx")),
    ("he${XXX:-$PWD}xx", Some("he/homexx")),
    ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
    ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
    ("he${XXX:YYY}", None),
    ("he${XXX?}", None),
    ("he${XXX:?}", None),
    ("he${PWD?}", Some("he/home")),
    ("he${PWD:?}", Some("he/home")),
    ("he${NULL?}", Some("he")),
    ("he${NULL:?}", None),
    ("he${XXX:+${PWD}}xx", Some("hexx")),
    ("he${PWD:+${XXX}}xx", Some("hexx")),
    ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
    ("he${XXX:+000}xx", Some("hexx")),
    ("he${PWD:+000}xx", Some("he000xx")),
    ("'he${XX}'", Some("he${XX}")),
    ("\"he${PWD}\"", Some("he/home")),
    ("\"he'$PWD'\"", Some("he'/home'")),
    ("\"$PWD\"", Some("/home")),
    ("'$PWD'", Some("$PWD")),
    ("'\\$PWD'", Some("\\$PWD")),
    ("'\"hello\"'", Some("\"hello\"")),
    ("'he\\$PWD'", Some("he\\$PWD")),
    ("he${PWD", None),
    ("he${PWD:=000}xx", None),
    ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
    ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
    ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
    ("안녕하세요", Some("안녕하세요")),
    ("안'녕'하세요", Some("안녕하세요")),
    ("안'녕하세요", None),
    ("안녕\\'하세요", Some("안녕'하세요")),
    ("안\\\\'녕하세요", None),
    ("안녕\\t하세요", Some("안녕t하세요")),
    ("\"안녕\\t하세요\"", Some("안녕\\t하세요")),
    ("'안녕\\t하세요", None),
    ("안녕하세요\\", Some("안녕하세요")),
    ("안녕하세요\\\\", Some("안녕하세요\\")),
    ("\"안녕하세요", None),
    ("\"안녕하세요\\\"", None),
    ("\"안녕'하세요\"", Some("안녕'하세요")),
    ("'안녕하세요\\'", Some("안녕하세요\\")),
    ("안녕$1x", Some("안녕x")),
    ("안녕$.x", Some("안녕$.x")),
    ("안녕$pwd.", Some("안녕.")),
    ("안녕$PWD", Some("안녕/home")),
    ("안녕\\$PWD", Some("안녕$PWD")),
    ("안녕\\\\$PWD", Some("안녕\\/home")),
    ("안녕\\${}", Some("안녕${}")),
    ("안녕${}xx", None),
    ("안녕${hi}xx", Some("안녕xx")),
    ("안녕${.}", None),
    ("안녕${XXX:-${YYY:-yyy}}xx", Some("안녕yyyxx")),
    ("안녕${PWD:+${SHELL}}xx", Some("안녕bashxx")),
    ("\"안녕'$PWD'\"", Some("안녕'/home'")),
    ("안녕${PWD:=000}xx", None),
    ("안녕${XXX:-\\${PWD}z}xx", Some("안녕${PWDz}xx")),
    ("$KOREAN", Some("한국어")),
    ("안녕$KOREAN", Some("안녕한국어")),
    ("${{aaa}", None),
    ("${aaa}}", Some("}")),
    ("${aaa", None),
    ("${{aaa:-bbb}", None),
    ("${aaa:-bbb}}", Some("bbb}")),
    ("${aaa:-bbb", None),
    ("${aaa:-bbb}", Some("bbb")),
    ("${aaa:-${bbb:-ccc}}", Some("ccc")),
    ("${aaa:-bbb ${foo}", None),
    ("${aaa:-bbb {foo}", Some("bbb {foo")),
    ("${:}", None),
    ("${:-bbb}", None),
    ("${:+bbb}", None),
    // Positional parameters are never set.
    ("$1", Some("")),
    ("${1}", Some("")),
    ("${1:+bbb}", Some("")),
    ("${1:-bbb}", Some("bbb")),
    ("$9", Some("")),
    ("${9:-bbb}", Some("bbb")),
    ("$999", Some("")),
    ("${999:+bbb}", Some("")),
    ("$999aaa", Some("aaa")),
    ("${999}aaa", Some("aaa")),
    ("${999:-bbb}aaa", Some("bbbaaa")),
    ("$001", Some("")),
    ("${001:-bbb}", Some("bbb")),
    ("$001aaa", Some("aaa")),
    ("${001:+bbb}aaa", Some("aaa")),
    // Special parameters are never set either.
    ("$@", Some("")),
    ("${@}", Some("")),
    ("${@:+bbb}", Some("")),
    ("${@:-bbb}", Some("bbb")),
    ("$@@@", Some("@@")),
    ("$@aaa", Some("aaa")),
    ("${@:-bbb}aaa", Some("bbbaaa")),
    ("$*", Some("")),
    ("${*:-bbb}", Some("bbb")),
    ("$#", Some("")),
    ("${#}", Some("")),
    ("${#:+bbb}", Some("")),
    ("${#:-bbb}", Some("bbb")),
    ("$?", Some("")),
    ("${?:-bbb}", Some("bbb")),
    ("$-", Some("")),
    ("${-:-bbb}", Some("bbb")),
    ("$$", Some("")),
    ("${$}", Some("")),
    ("${$:-bbb}", Some("bbb")),
    ("$!", Some("")),
    ("${!:+bbb}", Some("")),
    ("$0", Some("")),
    ("${0:-bbb}", Some("bbb")),
];

#[test]
fn process_word_cases() {
    let lex = Lexer::new('\\');
    let env = env();
    for (input, want) in WORD_CASES {
        let got = lex.process_word(input, &env);
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
        }
    }
}

/// `(env line to add first, input, expected words)`; `None` = error.
type WordsStep<'a> = (Option<&'a str>, &'a str, Option<&'a [&'a str]>);

#[test]
fn process_words_cases() {
    let lex = Lexer::new('\\');
    let mut env: Vec<&str> = Vec::new();
    let steps: &[WordsStep] = &[
        (None, "hello", Some(&["hello"])),
        (None, "hello${hi}bye", Some(&["hellobye"])),
        (Some("hi=hi"), "hello${hi}bye", Some(&["hellohibye"])),
        (
            Some("space=abc  def"),
            "hello${space}bye",
            Some(&["helloabc", "defbye"]),
        ),
        (None, "hello\"${space}\"bye", Some(&["helloabc  defbye"])),
        (
            None,
            "hello \"${space}\"bye",
            Some(&["hello", "abc  defbye"]),
        ),
        (
            Some("leading=  ab c"),
            "hello${leading}def",
            Some(&["hello", "ab", "cdef"]),
        ),
        (
            None,
            "hello\"${leading}\" def",
            Some(&["hello  ab c", "def"]),
        ),
        (None, "hello\"${leading}\"", Some(&["hello  ab c"])),
        (None, "hello${leading}", Some(&["hello", "ab", "c"])),
        (
            Some("trailing=ab c   "),
            "hello${trailing}",
            Some(&["helloab", "c"]),
        ),
        (None, "hello${trailing}d", Some(&["helloab", "c", "d"])),
        (None, "hello\"${trailing}\"d", Some(&["helloab c   d"])),
        (None, "hel\"lo${trailing}\"", Some(&["helloab c   "])),
        (None, "hello\" there  \"", Some(&["hello there  "])),
        (None, "hello there", Some(&["hello", "there"])),
        (None, "hello\\ there", Some(&["hello there"])),
        (None, "hello\" there", None),
        (None, "hello\\\" there", Some(&["hello\"", "there"])),
        (None, "hello\"\\\\there\"", Some(&["hello\\there"])),
        (None, "hello\"\\there\"", Some(&["hello\\there"])),
        (None, "hello'\\\\there'", Some(&["hello\\\\there"])),
        (None, "hello'\\there'", Some(&["hello\\there"])),
        (None, "hello'$there'", Some(&["hello$there"])),
    ];
    for (set, input, want) in steps {
        if let Some(e) = set {
            env.push(e);
        }
        let got = lex.process_words(input, &EnvList::from_list(&env));
        match want {
            Some(w) => assert_eq!(
                got.unwrap_or_else(|e| panic!("{input}: {e}")),
                *w,
                "input {input:?}"
            ),
            None => assert!(got.is_err(), "input {input:?}"),
        }
    }
}

#[test]
fn process_words_keeps_buildkit_shared_buffer_quirk() {
    // BuildKit's nested ${...} processing resets the shared word buffer, so
    // the start of the word in progress is lost from the split words (the
    // single-word result is unaffected).
    let lex = Lexer::new('\\');
    let env = EnvList::new();
    assert_eq!(
        lex.process_words("a hello${x:-y}z", &env).unwrap(),
        ["a", "yz"]
    );
    assert_eq!(
        lex.process_word("a hello${x:-y}z", &env).unwrap(),
        "a helloyz"
    );
    assert_eq!(lex.process_words("hello${x}z", &env).unwrap(), ["helloz"]);
}

#[test]
fn mandatory_variables() {
    let lex = Lexer::new('\\');
    let set = EnvList::from_list(["VAR=plain", "ARG=x"]);
    let empty = EnvList::from_list(["VAR=", "ARG=x"]);
    let unset = EnvList::from_list(["ARG=x"]);
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";
    assert_eq!(lex.process_word(no_empty, &set).unwrap(), "plain");
    assert!(lex
        .process_word(no_empty, &empty)
        .unwrap_err()
        .to_string()
        .contains("message herex"));
    assert!(lex
        .process_word(no_empty, &unset)
        .unwrap_err()
        .to_string()
        .contains("message herex"));
    assert_eq!(lex.process_word(no_unset, &set).unwrap(), "plain");
    assert_eq!(lex.process_word(no_unset, &empty).unwrap(), "");
    assert_eq!(
        lex.process_word(no_unset, &unset).unwrap_err().to_string(),
        "failed to process \"${VAR?message here$ARG}\": VAR: message herex"
    );
}

#[test]
fn env_list_later_wins() {
    let e = EnvList::from_list(["foo=bar", "car=hat", "car=bike", "flag"]);
    assert_eq!(e.get("car"), Some("bike"));
    assert_eq!(e.get("flag"), Some(""));
    assert_eq!(e.get("nope"), None);
    assert_eq!(e.keys(), ["foo", "car", "flag"]);
    assert_eq!(e.to_list(), ["foo=bar", "car=bike", "flag="]);
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `(input, env, expected result or None for error, matched, unmatched)`.
type MatchCase<'a> = (
    &'a str,
    &'a [&'a str],
    Option<&'a str>,
    &'a [&'a str],
    &'a [&'a str],
);

#[test]
fn process_with_matches_cases() {
    let lex = Lexer::new('\\');
    let fb: &[&str] = &["FOO=xxx", "BAR="];
    let cases: &[MatchCase] = &[
        ("x", &["DUMMY=dummy"], Some("x"), &[], &[]),
        (
            "x ${UNUSED}",
            &["DUMMY=dummy"],
            Some("x "),
            &[],
            &["UNUSED"],
        ),
        ("x ${FOO}", &["FOO=y"], Some("x y"), &["FOO"], &[]),
        (
            "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
            fb,
            Some("xxx  ccc"),
            &["FOO", "BAR"],
            &["BAZ"],
        ),
        (
            "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
            fb,
            Some("xxx bbb ccc"),
            &["FOO", "BAR"],
            &["BAZ"],
        ),
        ("${FOO:-}", fb, Some("xxx"), &["FOO"], &[]),
        ("${FOO:-}", &[], Some(""), &[], &["FOO"]),
        (
            "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
            fb,
            Some("aaa bbb "),
            &["FOO", "BAR"],
            &["BAZ"],
        ),
        (
            "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
            fb,
            Some("aaa  "),
            &["FOO", "BAR"],
            &["BAZ"],
        ),
        ("${FOO?aaa}", fb, Some("xxx"), &["FOO"], &[]),
        ("${BAR?bbb}", fb, Some(""), &["BAR"], &[]),
        ("${BAZ?ccc}", fb, None, &[], &[]),
        ("${FOO:?aaa}", fb, Some("xxx"), &["FOO"], &[]),
        ("${BAR:?bbb}", fb, None, &[], &[]),
        ("${BAZ:?ccc}", fb, None, &[], &[]),
        ("${BAZ:?}", fb, None, &[], &[]),
        ("${FOO=aaa}", fb, None, &[], &[]),
        ("${FOO=:aaa}", fb, None, &[], &[]),
        ("${FOO=}", &[], None, &[], &[]),
        (
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            &["FOO=()[]{}^$.*?|\\x"],
            Some("x"),
            &["FOO"],
            &[],
        ),
        ("${FOO%%\\**}", &["FOO=xx**"], Some("xx"), &["FOO"], &[]),
        ("${FOO#*x*y}", &["FOO=xxyy"], Some("y"), &["FOO"], &[]),
        ("${FOO#*}", &["FOO=xxyy"], Some("xxyy"), &["FOO"], &[]),
        (
            "${FOO#$BAR}",
            &["FOO=xxyy", "BAR=x"],
            Some("xyy"),
            &["FOO", "BAR"],
            &[],
        ),
        (
            "${FOO#$BAR}",
            &["FOO=xxyy", "BAR="],
            Some("xxyy"),
            &["FOO", "BAR"],
            &[],
        ),
        ("${FOO#}", &["FOO=xxyy"], Some("xxyy"), &["FOO"], &[]),
        ("${FOO##*x}", &["FOO=xxyy"], Some("yy"), &["FOO"], &[]),
        ("${FOO##}", &["FOO=xxyy"], Some("xxyy"), &["FOO"], &[]),
        ("${FOO#?\\?}", &["FOO=???y"], Some("?y"), &["FOO"], &[]),
        (
            "${ABC:-.}${FOO%x}${ABC:-.}",
            &["FOO=xxyy"],
            Some(".xxyy."),
            &["FOO"],
            &["ABC"],
        ),
        (
            "${FOO%%\\**\\*}",
            &["FOO=a***yy*"],
            Some("a"),
            &["FOO"],
            &[],
        ),
        ("${FOO%}", &["FOO=xxyy"], Some("xxyy"), &["FOO"], &[]),
        (
            "${FOO%%$BAR}",
            &["FOO=xxyy", "BAR="],
            Some("xxyy"),
            &["FOO", "BAR"],
            &[],
        ),
        ("${FOO:#}", &[], None, &[], &[]),
        ("${FOO:##}", &[], None, &[], &[]),
        ("${FOO:%}", &[], None, &[], &[]),
        ("${FOO:%%}", &[], None, &[], &[]),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &["FOO=/foo*/*/*.txt", "NEEDLE=\\*/"],
            Some("/foo.*/*.txt - /foo..*.txt"),
            &["FOO", "NEEDLE"],
            &[],
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &["FOO=/tmp/tmp/bar.txt", "NEEDLE=/tmp"],
            Some("/tmp/bar.txt - /bar.txt"),
            &["FOO", "NEEDLE"],
            &[],
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &["FOO=/a/foo/b/c.txt", "NEEDLE=/?/", "REPLACEMENT=/"],
            Some("/foo/b/c.txt - /foo/c.txt"),
            &["FOO", "NEEDLE", "REPLACEMENT"],
            &[],
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &[
                "FOO=http://google.de",
                "NEEDLE=http://",
                "REPLACEMENT=https://",
            ],
            Some("https://google.de"),
            &["FOO", "NEEDLE", "REPLACEMENT"],
            &[],
        ),
        (
            "${FOO//\\//\\/}",
            &["FOO=/tmp/foo.txt"],
            Some("\\/tmp\\/foo.txt"),
            &["FOO"],
            &[],
        ),
        (
            "${FOO/$BAR/ww}",
            &["FOO=xxyy", "BAR="],
            Some("wwxxyy"),
            &["FOO", "BAR"],
            &[],
        ),
        ("${FOO//ww}", &["FOO=xxyy"], None, &[], &[]),
        ("${FOO//}", &["FOO=xxyy"], None, &[], &[]),
        ("${FOO///}", &["FOO=xxyy"], Some("xxyy"), &["FOO"], &[]),
        ("${FOO///}", &[], Some(""), &[], &["FOO"]),
    ];
    for (input, env, want, matched, unmatched) in cases {
        let got = lex.process_word_with_matches(input, &EnvList::from_list(*env));
        match want {
            None => assert!(got.is_err(), "{input} should fail: {got:?}"),
            Some(w) => {
                let p = got.unwrap_or_else(|e| panic!("{input}: {e}"));
                assert_eq!(p.result, *w, "{input}");
                assert_eq!(p.matched, set(matched), "{input} matched");
                assert_eq!(p.unmatched, set(unmatched), "{input} unmatched");
            }
        }
    }
}

#[test]
fn platform_style_expansion() {
    let lex = Lexer::new('\\');
    let release =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let e = |v: &[&str]| EnvList::from_list(v);
    let r = lex.process_word(
        release,
        &e(&[
            "VERSION=v1.2.3",
            "TARGETOS=linux",
            "TARGETARCH=arm",
            "TARGETVARIANT=v7",
        ]),
    );
    assert_eq!(r.unwrap(), "something-v1.2.3.linux-arm-v7.tar.gz");
    let r = lex.process_word(
        release,
        &e(&[
            "VERSION=v1.2.3",
            "TARGETOS=linux",
            "TARGETARCH=arm64",
            "TARGETVARIANT=",
        ]),
    );
    assert_eq!(r.unwrap(), "something-v1.2.3.linux-arm64.tar.gz");
    let r = lex.process_word(
        release,
        &e(&["VERSION=v1.2.3", "TARGETOS=linux", "TARGETARCH=arm64"]),
    );
    assert_eq!(r.unwrap(), "something-v1.2.3.linux-arm64.tar.gz");
}

#[test]
fn exact_error_messages() {
    let lex = Lexer::new('\\');
    let env = EnvList::from_list(["FOO=xxyy"]);
    let cases = [
        ("he${}", "failed to process \"he${}\": syntax error: bad substitution"),
        ("${", "failed to process \"${\": syntax error: missing '}'"),
        // Go prints the EOF "modifier" as U+FFFD.
        ("${aaa", "failed to process \"${aaa\": unsupported modifier (\u{fffd}) in substitution"),
        ("${aaa:-bbb", "failed to process \"${aaa:-bbb\": syntax error: missing '}'"),
        ("${FOO//ww}", "failed to process \"${FOO//ww}\": syntax error: missing '/' in ${}"),
        ("${FOO:=x}", "failed to process \"${FOO:=x}\": unsupported modifier (:=) in substitution"),
        ("${FOO:#x}", "failed to process \"${FOO:#x}\": unsupported modifier (:#) in substitution"),
        ("${.}", "failed to process \"${.}\": unsupported modifier (.) in substitution"),
        ("${X?}", "failed to process \"${X?}\": X: is not allowed to be unset"),
        ("'abc", "failed to process \"'abc\": unexpected end of statement while looking for matching single-quote"),
        ("\"abc", "failed to process \"\\\"abc\": unexpected end of statement while looking for matching double-quote"),
        (
            "${FOO#a\\b}",
            "failed to process \"${FOO#a\\\\b}\": invalid pattern (a\\b) in substitution: invalid escape '\\b'",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            lex.process_word(input, &env).unwrap_err().to_string(),
            want,
            "{input}"
        );
    }
}

#[test]
fn modes_and_escape_character() {
    let env = EnvList::from_list(["A=1"]);
    // Backtick escape: backslash is an ordinary character.
    let bt = Lexer::new('`');
    assert_eq!(
        bt.process_word("C:\\path `$A $A", &env).unwrap(),
        "C:\\path $A 1"
    );
    assert_eq!(bt.process_word("\"a`\"b\"", &env).unwrap(), "a\"b");
    // RawQuotes + SkipUnsetEnv (how BuildKit prints RUN step names).
    let raw = Lexer::new('\\').raw_quotes(true).skip_unset_env(true);
    assert_eq!(
        raw.process_word("echo \"$A\" '$B' ${C:-x} ${D}", &env)
            .unwrap(),
        "echo \"1\" '$B' ${C:-x} ${D}"
    );
    // Heredoc bodies: quotes are not processed.
    let heredoc = Lexer::new('\\').skip_process_quotes(true);
    assert_eq!(
        heredoc.process_word("say '$A' \"$A\"\n", &env).unwrap(),
        "say '1' \"1\"\n"
    );
    // A byte order mark at the start of a word is skipped, like Go's text/scanner.
    assert_eq!(
        Lexer::new('\\').process_word("\u{feff}x$A", &env).unwrap(),
        "x1"
    );
    // Replacement templates follow Go's regexp expansion.
    let e = EnvList::from_list(["V=abc"]);
    // `$0` is expanded by the lexer first (to nothing); `\$0` reaches the template.
    assert_eq!(
        Lexer::new('\\').process_word("${V/b/<$0>}", &e).unwrap(),
        "a<>c"
    );
    // A single replacement is plain text; replace-all expands Go templates.
    assert_eq!(
        Lexer::new('\\').process_word("${V/b/<\\$0>}", &e).unwrap(),
        "a<\\$0>c"
    );
    assert_eq!(
        Lexer::new('\\').process_word("${V//b/<\\$0>}", &e).unwrap(),
        "a<\\b>c"
    );
    assert_eq!(
        Lexer::new('\\').process_word("${V//b/\\$\\$}", &e).unwrap(),
        "a\\$\\$c"
    );
}

/// Substitutions nested deeper than any real Dockerfile are refused with a message, not a
/// stack overflow (which aborts the process); up to the limit they work, here on a 1 MiB
/// stack (half of a test thread's) even in a debug build, and the error shows only the
/// start of a huge word.
#[test]
fn deeply_nested_substitutions_are_an_error_not_an_abort() {
    use kiln_dockerfile::{NoEnv, MAX_SUBSTITUTION_DEPTH};
    let nested = |n: usize| format!("{}v{}", "${x:-".repeat(n), "}".repeat(n));
    let run = move || {
        let lex = Lexer::new('\\');
        assert_eq!(
            lex.process_word(&nested(MAX_SUBSTITUTION_DEPTH - 1), &NoEnv)
                .unwrap(),
            "v"
        );
        let err = lex
            .process_word(&nested(100_000), &NoEnv)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(&format!(
                "… (600001 characters): substitutions nested more than \
                 {MAX_SUBSTITUTION_DEPTH} deep"
            )),
            "{}",
            &err[..300]
        );
        assert!(err.len() < 400, "{} bytes", err.len());
    };
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
