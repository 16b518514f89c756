//! `.dockerignore` reading, matching and walker decisions
//! (moby/patternmatcher v0.6.0 + tonistiigi/fsutil semantics).

use kiln_dockerfile::{find_dockerignore, read_patterns, IgnoreMatcher, MatchInfo, WalkDecision};

#[test]
fn reading_like_ignorefile_readall() {
    let text = "\u{feff}# comment\n  # not comment\n/abs/path\n!/keep/../keep2\n\n  spaced  \n! spaced-exception \n./a//b/\nfoo\r\n#last";
    assert_eq!(
        read_patterns(text).unwrap(),
        [
            "# not comment",
            "abs/path",
            "!keep2",
            "spaced",
            "!spaced-exception",
            "a/b",
            "foo"
        ]
    );
    assert_eq!(read_patterns("!\n").unwrap(), ["!"]);
    assert_eq!(
        IgnoreMatcher::parse("!\n").unwrap_err().to_string(),
        "illegal exclusion pattern: \"!\""
    );
    assert_eq!(
        IgnoreMatcher::parse("a\n[\n").unwrap_err().to_string(),
        "syntax error in pattern"
    );
    assert_eq!(
        IgnoreMatcher::parse("a\\\n").unwrap_err().to_string(),
        "syntax error in pattern"
    );
    // Valid for filepath.Match but rejected by Go's regexp compiler.
    assert!(IgnoreMatcher::parse("[b-a]\n").is_err());
    assert!(IgnoreMatcher::parse("").unwrap().is_empty());
}

#[test]
fn matches_or_parent_matches() {
    let m = IgnoreMatcher::new(&[
        "*.md",
        "!README.md",
        "docs/**",
        "!docs/keep/**",
        "**/*.log",
        "temp?",
        "a/b/c",
        "file.txt",
    ])
    .unwrap();
    let cases = [
        ("x.md", true),
        ("README.md", false),
        ("sub/x.md", false),
        ("docs", false),
        ("docs/a", true),
        ("docs/a/b", true),
        ("docs/keep/x", false),
        ("x.log", true),
        ("a/b/x.log", true),
        ("temp1", true),
        ("temp12", false),
        ("temp/x", false),
        ("temp1/x", true),
        ("a/b/c", true),
        ("a/b/c/d", true),
        ("a/b", false),
        ("file.txt", true),
        ("fileAtxt", false),
    ];
    for (path, want) in cases {
        assert_eq!(m.matches_or_parent_matches(path), want, "{path}");
    }
}

#[test]
fn pattern_syntax() {
    let check = |pattern: &str, yes: &[&str], no: &[&str]| {
        let m = IgnoreMatcher::parse(pattern).unwrap();
        for p in yes {
            assert!(m.matches_or_parent_matches(p), "{pattern} should match {p}");
        }
        for p in no {
            assert!(
                !m.matches_or_parent_matches(p),
                "{pattern} should not match {p}"
            );
        }
    };
    check(
        "file[0-9].txt",
        &["file5.txt"],
        &["fileA.txt", "file55.txt"],
    );
    check("file[^0-9].txt", &["fileA.txt"], &["file5.txt"]);
    check("\\*literal", &["*literal"], &["xliteral"]);
    check("a?c", &["abc"], &["a/c", "ac"]);
    check("**", &["x", "a/b/c"], &[]);
    check(
        "**/node_modules",
        &["node_modules", "a/node_modules", "a/node_modules/x"],
        &["xnode_modules"],
    );
    check(
        "src/**/*.go",
        &["src/a.go", "src/x/y/a.go"],
        &["a.go", "src/a.gox"],
    );
    check("/rooted", &["rooted", "rooted/x"], &["a/rooted"]);
    check("dir/", &["dir", "dir/x"], &["dirx"]);
    check("*", &["a", "a/b"], &[]);
    check("a/*/c", &["a/b/c", "a/b/c/d"], &["a/c", "a/b/x/c"]);
    check("ünï*.txt", &["ünïcødé.txt"], &["unicode.txt"]);
    check("a+b(c)|{d}$", &["a+b(c)|{d}$"], &["aab"]);
    // patternmatcher turns `*` inside a class into `[^/]*`: `[*]` is a Go
    // class of `[`, `^`, `/` (repeated) followed by `]`.
    check("x[*]", &["x]", "x[^]"], &["x*"]);
}

#[test]
fn walker_skips_or_descends_like_fsutil() {
    let root = MatchInfo::default();
    // No exceptions: an excluded directory is skipped whole.
    let m = IgnoreMatcher::parse("ignored/\n*.tmp\n").unwrap();
    assert_eq!(
        m.walk_decision("ignored", true, &root).0,
        WalkDecision::SkipDir
    );
    assert_eq!(
        m.walk_decision("x.tmp", false, &root).0,
        WalkDecision::Exclude
    );
    assert_eq!(m.walk_decision("sub", true, &root).0, WalkDecision::Include);
    assert!(!m.may_include_inside("ignored"));
    assert!(m.is_excluded("ignored/secret.txt", false));
    assert!(!m.is_excluded("sub/x.tmp", false));

    // A plain exception below an excluded directory: descend into it only.
    let m = IgnoreMatcher::parse("build\n!build/keep.txt\nother\n").unwrap();
    let (d, info) = m.walk_decision("build", true, &root);
    assert_eq!(d, WalkDecision::Exclude);
    assert_eq!(
        m.walk_decision("build/keep.txt", false, &info).0,
        WalkDecision::Include
    );
    assert_eq!(
        m.walk_decision("build/other.txt", false, &info).0,
        WalkDecision::Exclude
    );
    assert_eq!(
        m.walk_decision("other", true, &root).0,
        WalkDecision::SkipDir
    );
    assert!(m.may_include_inside("build"));
    assert!(!m.may_include_inside("other"));
    assert!(!m.is_excluded("build/keep.txt", false));
    assert!(m.is_excluded("build", true));
    assert!(m.is_excluded("other/keep.txt", false));

    // An exception with a wildcard: every excluded directory is walked.
    let m = IgnoreMatcher::parse("build\n!*.txt\n").unwrap();
    assert!(m.may_include_inside("build"));
    assert_eq!(
        m.walk_decision("build", true, &root).0,
        WalkDecision::Exclude
    );
    // ...but `*.txt` only matches at the root, so nothing inside comes back.
    assert!(m.is_excluded("build/x.txt", false));
    assert!(!m.is_excluded("x.txt", false));

    // Children inherit their parent's matches.
    let m = IgnoreMatcher::parse("docs/**\n!docs/keep/**\n").unwrap();
    assert!(!m.is_excluded("docs", true));
    assert!(m.is_excluded("docs/a", false));
    assert!(m.is_excluded("docs/keep", true));
    assert!(!m.is_excluded("docs/keep/x", false));
    assert!(!m.is_excluded("docs/keep/deep/x", false));

    // Everything but one file.
    let m = IgnoreMatcher::parse("**\n!keep\n").unwrap();
    assert!(!m.is_excluded("keep", false));
    assert!(m.is_excluded("other", false));
    assert_eq!(m.walk_decision("sub", true, &root).0, WalkDecision::SkipDir);

    // No patterns: everything is sent.
    let m = IgnoreMatcher::parse("# nothing\n").unwrap();
    assert_eq!(m.walk_decision("x", true, &root).0, WalkDecision::Include);
    assert!(!m.is_excluded("x/y", false));
}

#[test]
fn lookup_order() {
    let base = std::env::temp_dir().join(format!("kiln-dockerignore-{}", std::process::id()));
    let ctx = base.join("ctx");
    let dfdir = base.join("df");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::create_dir_all(&dfdir).unwrap();
    let dockerfile = dfdir.join("Dockerfile");
    assert_eq!(find_dockerignore(&dockerfile, &ctx), None);
    std::fs::write(ctx.join(".dockerignore"), "x\n").unwrap();
    assert_eq!(
        find_dockerignore(&dockerfile, &ctx),
        Some(ctx.join(".dockerignore"))
    );
    // The Dockerfile-specific file wins, even when empty.
    std::fs::write(dfdir.join("Dockerfile.dockerignore"), "").unwrap();
    assert_eq!(
        find_dockerignore(&dockerfile, &ctx),
        Some(dfdir.join("Dockerfile.dockerignore"))
    );
    std::fs::remove_dir_all(&base).unwrap();
}
