//! Parsing of every construct, and BuildKit's errors with their lines.

use kiln_dockerfile::*;
use std::collections::BTreeMap;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn ok(text: &str) -> Dockerfile {
    parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn labs(text: &str) -> Dockerfile {
    parse_with(text, "Dockerfile", ParseOptions { labs: true })
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text, "Dockerfile") {
        Ok(df) => panic!("{text:?} parsed: {df:?}"),
        Err(e) => e.to_string(),
    }
}

/// The instructions of the (last) stage.
fn ins(text: &str) -> Vec<Instruction> {
    ok(text)
        .stages
        .last()
        .unwrap()
        .commands
        .iter()
        .map(|c| c.instruction.clone())
        .collect()
}

fn one(text: &str) -> Instruction {
    let mut v = ins(&format!("FROM scratch\n{text}"));
    assert_eq!(v.len(), 1, "{text}");
    v.remove(0)
}

#[test]
fn parser_directives() {
    let df = ok("# syntax=docker/dockerfile:1\n# ESCAPE = `\n  #check=skip=all;error=true  \nFROM scratch\nCOPY a `\n  b\n");
    let d: Vec<(String, String, usize)> = df
        .directives
        .iter()
        .map(|d| (d.name.clone(), d.value.clone(), d.line))
        .collect();
    assert_eq!(
        d,
        vec![
            ("syntax".into(), "docker/dockerfile:1".into(), 1),
            ("escape".into(), "`".into(), 2),
            ("check".into(), "skip=all;error=true".into(), 3)
        ]
    );
    assert_eq!(df.escape, '`');
    assert_eq!(df.directive("syntax"), Some("docker/dockerfile:1"));
    assert!(df.comments.is_empty());
    let Instruction::Copy(c) = &df.stages[0].commands[0].instruction else {
        panic!()
    };
    assert_eq!((c.srcs.clone(), c.dest.as_str()), (s(&["a"]), "b"));

    // A BOM is skipped; directives must come before anything else.
    assert_eq!(ok("\u{feff}# escape=`\nFROM scratch\n").escape, '`');
    for text in [
        "\n# escape=`\nFROM scratch\n",
        "# hello\n# escape=`\nFROM scratch\n",
        "# foo=bar\n# escape=`\nFROM scratch\n",
    ] {
        let df = ok(text);
        assert!(df.directives.is_empty(), "{text:?}");
        assert_eq!(df.escape, '\\');
    }
    let df = ok("FROM scratch\n# escape=`\n");
    assert_eq!(
        df.comments,
        vec![Comment {
            line: 2,
            text: "escape=`".into()
        }]
    );

    assert_eq!(
        err("# escape=`\n# Escape=\\\nFROM scratch\n"),
        "Dockerfile:2: only one escape parser directive can be used"
    );
    assert_eq!(
        err("# escape=x\nFROM scratch\n"),
        "Dockerfile:1: invalid escape token 'x' does not match ` or \\"
    );
}

#[test]
fn comments_continuations_and_warnings() {
    let text = "FROM scratch\n# kiln:ignore=RULE\nRUN echo a \\\n# inner comment\n    b \\\n\n    c\n  # indented comment\n";
    let df = ok(text);
    assert_eq!(
        df.comments,
        vec![
            Comment {
                line: 2,
                text: "kiln:ignore=RULE".into()
            },
            Comment {
                line: 4,
                text: "inner comment".into()
            },
            Comment {
                line: 8,
                text: "indented comment".into()
            },
        ]
    );
    let c = &df.stages[0].commands[0];
    assert_eq!((c.line, c.end_line), (3, 7));
    assert_eq!(c.original, "RUN echo a     b     c");
    let Instruction::Run(r) = &c.instruction else {
        panic!()
    };
    assert_eq!(r.cmd, ShellOrExec::Shell("echo a     b     c".into()));
    assert_eq!(
        df.warnings,
        vec![Warning {
            line: 7,
            message: "Empty continuation line found in: RUN echo a     b     c".into()
        }]
    );

    // An escaped escape does not continue; CRLF endings are fine.
    let v = ins("FROM scratch\r\nRUN echo \\\\\r\nRUN a \\\r\n b\r\n");
    assert_eq!(v.len(), 2);
    let Instruction::Run(r) = &v[1] else { panic!() };
    assert_eq!(r.cmd, ShellOrExec::Shell("a  b".into()));
    // A continuation at end of file is just the end.
    assert_eq!(one("RUN a \\"), ins("FROM scratch\nRUN a")[0]);
    // Backtick escape.
    let v = ins("# escape=`\nFROM scratch\nRUN echo C:\\foo `\n    bar\n");
    assert_eq!(v[0], ins("FROM scratch\nRUN echo C:\\foo     bar")[0]);
}

#[test]
fn exec_form_and_fallback() {
    let run = |t: &str| match one(t) {
        Instruction::Run(r) => r.cmd,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        run("RUN [ \"echo\" , \"a b\" ]"),
        ShellOrExec::Exec(s(&["echo", "a b"]))
    );
    assert_eq!(run("RUN []"), ShellOrExec::Exec(vec![]));
    // Not valid JSON: shell form, verbatim.
    assert_eq!(
        run("RUN [\"echo\", 'x']"),
        ShellOrExec::Shell("[\"echo\", 'x']".into())
    );
    assert_eq!(
        run("RUN [\"unterminated]"),
        ShellOrExec::Shell("[\"unterminated]".into())
    );
    assert_eq!(run("RUN"), ShellOrExec::Shell(String::new()));
    assert_eq!(
        err("FROM scratch\nRUN [\"a\", 1]\n"),
        "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"
    );
    let Instruction::Cmd(c) = one("CMD [\"--flag\", \"value\"]") else {
        panic!()
    };
    assert_eq!(
        c.cmd.with_shell(&s(&["/bin/sh", "-c"])),
        s(&["--flag", "value"])
    );
    let Instruction::Cmd(c) = one("CMD echo $HOME") else {
        panic!()
    };
    assert_eq!(
        c.cmd.with_shell(&s(&["/bin/sh", "-c"])),
        s(&["/bin/sh", "-c", "echo $HOME"])
    );
    let Instruction::Entrypoint(e) = one("ENTRYPOINT []") else {
        panic!()
    };
    assert_eq!(e.config_value(&s(&["/bin/sh", "-c"])), None);
    let Instruction::Entrypoint(e) = one("ENTRYPOINT") else {
        panic!()
    };
    assert_eq!(
        e.config_value(&s(&["/bin/sh", "-c"])),
        Some(s(&["/bin/sh", "-c", ""]))
    );
    // COPY's shell form splits on whitespace only (quotes are not grouping).
    let Instruction::Copy(c) = one("COPY \"a b\" c") else {
        panic!()
    };
    assert_eq!((c.srcs, c.dest), (s(&["\"a", "b\""]), "c".to_string()));
    let Instruction::Copy(c) = one("COPY [\"a b\", \"c d\"]") else {
        panic!()
    };
    assert_eq!((c.srcs, c.dest), (s(&["a b"]), "c d".to_string()));
}

#[test]
fn heredocs() {
    let df = ok("FROM busybox\nRUN <<EOF\necho $HOME\nEOF\nCOPY <<-\"FILE\" /dest\n\tline1\n\t\tline2\n\tFILE\nRUN <<A cat - <<'B' > /out\na\nA\nb\nB\nRUN [\"<<EOF\"]\nRUN 3<<X\nX\n");
    let c = &df.stages[0].commands;
    assert_eq!((c[0].line, c[0].end_line), (2, 4));
    let Instruction::Run(r) = &c[0].instruction else {
        panic!()
    };
    assert_eq!(r.cmd, ShellOrExec::Shell("<<EOF".into()));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            file_descriptor: 0,
            expand: true,
            chomp: false,
            content: "echo $HOME\n".into()
        }]
    );
    assert_eq!((c[1].line, c[1].end_line), (5, 8));
    let Instruction::Copy(cp) = &c[1].instruction else {
        panic!()
    };
    assert!(cp.srcs.is_empty());
    assert_eq!(
        cp.inline,
        vec![InlineFile {
            path: "FILE".into(),
            data: "line1\nline2\n".into(),
            expand: false
        }]
    );
    assert_eq!(cp.dest, "/dest");
    let Instruction::Run(r) = &c[2].instruction else {
        panic!()
    };
    assert_eq!(r.cmd, ShellOrExec::Shell("<<A cat - <<'B' > /out".into()));
    let names: Vec<(&str, &str, bool)> = r
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str(), h.expand))
        .collect();
    assert_eq!(names, vec![("A", "a\n", true), ("B", "b\n", false)]);
    let Instruction::Run(r) = &c[3].instruction else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
    assert_eq!(r.cmd, ShellOrExec::Exec(s(&["<<EOF"])));
    let Instruction::Run(r) = &c[4].instruction else {
        panic!()
    };
    assert_eq!(
        (
            r.heredocs[0].file_descriptor,
            r.heredocs[0].content.as_str()
        ),
        (3, "")
    );

    // Heredoc bodies are not instructions, comments or continuations.
    let df = ok("FROM scratch\nCOPY <<EOF /f\n# not a comment\nFROM x \\\nEOF\n");
    assert!(df.comments.is_empty());
    assert_eq!(df.stages.len(), 1);

    // ONBUILD keeps heredocs in its expression.
    let Instruction::Onbuild(o) = one("ONBUILD RUN <<EOF\necho hi\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<EOF\necho hi\nEOF");

    assert_eq!(
        err("FROM scratch\nRUN <<EOF\necho\n"),
        "Dockerfile:2: unterminated heredoc"
    );
    assert_eq!(
        err("FROM scratch\nRUN <<A <<B\na\nA\nb\n"),
        "Dockerfile:2: unterminated heredoc"
    );
    // Only RUN, COPY and ADD take heredocs: the body is read as instructions.
    assert_eq!(
        err("FROM scratch\nUSER <<INVALID\nINVALID\n"),
        "Dockerfile:3: unknown instruction: INVALID"
    );
    assert_eq!(
        err("FROM scratch\nCOPY a <<EOF\nx\nEOF\n"),
        "Dockerfile:2: COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn flags() {
    let Instruction::Copy(c) = one("COPY --chmod=755 --link --chown=1:2 --from=build a b") else {
        panic!()
    };
    assert_eq!(
        (
            c.chmod.as_deref(),
            c.link,
            c.chown.as_deref(),
            c.from.as_deref()
        ),
        (Some("755"), true, Some("1:2"), Some("build"))
    );
    let Instruction::Add(a) =
        one("ADD --keep-git-dir=true --checksum=sha256:abc --link=false https://x/y.tar /z")
    else {
        panic!()
    };
    assert_eq!(
        (a.keep_git_dir, a.checksum.as_deref(), a.link),
        (true, Some("sha256:abc"), false)
    );
    let Instruction::Run(r) =
        one("RUN --network=none --mount=type=cache,target=/c --mount=type=secret,id=t true")
    else {
        panic!()
    };
    assert_eq!(
        (r.network, r.mounts.len(), r.flags_used.clone()),
        (NetworkMode::None, 2, s(&["mount", "network"]))
    );
    let Instruction::Run(r) = one("RUN --network=host true") else {
        panic!()
    };
    assert_eq!(r.network, NetworkMode::Host);
    // STOPSIGNAL, ARG and HEALTHCHECK NONE never look at their flags.
    assert_eq!(
        one("STOPSIGNAL --foo SIGKILL"),
        Instruction::StopSignal(StopSignal {
            signal: "SIGKILL".into()
        })
    );
    assert_eq!(
        one("ARG --foo X"),
        Instruction::Arg(Arg {
            args: vec![ArgDef {
                key: "X".into(),
                default: None
            }]
        })
    );
    let Instruction::Healthcheck(h) = one("HEALTHCHECK --bogus NONE") else {
        panic!()
    };
    assert_eq!(h.test, s(&["NONE"]));
    // Labs-only flags.
    let Instruction::Copy(c) =
        labs("FROM scratch\nCOPY --parents --exclude=*.md --exclude=x a b").stages[0].commands[0]
            .instruction
            .clone()
    else {
        panic!()
    };
    assert_eq!((c.parents, c.exclude), (true, s(&["*.md", "x"])));
    let Instruction::Run(r) = labs("FROM scratch\nRUN --security=insecure x").stages[0].commands[0]
        .instruction
        .clone()
    else {
        panic!()
    };
    assert_eq!(r.security, Security::Insecure);
    // Flag words lose their quotes, so the whole rest becomes the flag value.
    let Instruction::Run(r) = one("RUN --mount=\"type=tmpfs,target=/a b\" true") else {
        panic!()
    };
    assert_eq!(
        (r.mounts.clone(), r.cmd),
        (
            s(&["type=tmpfs,target=/a b"]),
            ShellOrExec::Shell("true".into())
        )
    );
    let df = ok("FROM --platform=$BUILDPLATFORM golang:1.23 AS build\n");
    assert_eq!(
        df.stages[0].from.platform.as_deref(),
        Some("$BUILDPLATFORM")
    );

    let cases = [
        ("COPY --parents a b", "unknown flag: --parents"),
        ("COPY --exclude=x a b", "unknown flag: --exclude"),
        ("RUN --security=insecure x", "unknown flag: --security"),
        ("ADD --unpack=true x y", "unknown flag: --unpack"),
        ("COPY --chmd=644 a b", "unknown flag: --chmd (did you mean chmod?)"),
        ("COPY --from=a --from=b a b", "duplicate flag specified: --from"),
        ("COPY --chown a b", "missing a value on flag: --chown"),
        ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
        ("RUN --network=bogus true", "invalid network mode \"bogus\""),
        ("RUN --network= true", "invalid network mode \"\""),
        ("WORKDIR --foo /x", "unknown flag: --foo"),
        ("MAINTAINER --boo joe@example.com", "unknown flag: --boo"),
        ("RUN --mount=from=$X,target=/x true", "'from' doesn't support variable expansion, define alias stage instead"),
        ("RUN --mount=a\\\"b true", "failed to parse csv mounts: parse error on line 1, column 2: bare \" in non-quoted-field"),
        ("FROM --platfrom=x scratch", "unknown flag: --platfrom (did you mean platform?)"),
        ("FROM --plat=x scratch", "unknown flag: --plat"),
    ];
    for (line, want) in cases {
        assert_eq!(
            err(&format!("FROM scratch\n{line}\n")),
            format!("Dockerfile:2: {want}"),
            "{line}"
        );
    }
}

#[test]
fn env_label_arg() {
    let kv = |k: &str, v: &str, legacy: bool| KeyValue {
        key: k.into(),
        value: v.into(),
        legacy,
    };
    assert_eq!(
        one("ENV A=1 B=\"two words\" C= D=x\\ y"),
        Instruction::Env(Env {
            vars: vec![
                kv("A", "1", false),
                kv("B", "\"two words\"", false),
                kv("C", "", false),
                kv("D", "x\\ y", false)
            ]
        })
    );
    assert_eq!(
        one("ENV LEGACY value with  spaces"),
        Instruction::Env(Env {
            vars: vec![kv("LEGACY", "value with  spaces", true)]
        })
    );
    assert_eq!(
        one("LABEL \"com.example.key\"=\"v\" other=x"),
        Instruction::Label(Label {
            labels: vec![
                kv("\"com.example.key\"", "\"v\"", false),
                kv("other", "x", false)
            ]
        })
    );
    assert_eq!(
        one("ARG A B=2 C= D=\"x y\""),
        Instruction::Arg(Arg {
            args: vec![
                ArgDef {
                    key: "A".into(),
                    default: None
                },
                ArgDef {
                    key: "B".into(),
                    default: Some("2".into())
                },
                ArgDef {
                    key: "C".into(),
                    default: Some(String::new())
                },
                ArgDef {
                    key: "D".into(),
                    default: Some("\"x y\"".into())
                },
            ]
        })
    );
    let cases = [
        ("ENV A", "ENV must have two arguments"),
        (
            "ENV A=1 B",
            "Syntax error - can't find = in \"B\". Must be of the form: name=value",
        ),
        ("ENV", "ENV requires at least one argument"),
        ("LABEL =x", "LABEL names can not be blank"),
        ("LABEL", "LABEL requires at least one argument"),
        ("ARG =x", "ARG names can not be blank"),
        ("ARG", "ARG requires at least one argument"),
    ];
    for (line, want) in cases {
        assert_eq!(
            err(&format!("FROM scratch\n{line}\n")),
            format!("Dockerfile:2: {want}"),
            "{line}"
        );
    }
}

#[test]
fn other_instructions() {
    assert_eq!(
        one("WORKDIR a b"),
        Instruction::Workdir(Workdir { path: "a b".into() })
    );
    assert_eq!(
        one("USER  app:app "),
        Instruction::User(User {
            user: "app:app".into()
        })
    );
    assert_eq!(
        one("EXPOSE 9090 80/tcp 443"),
        Instruction::Expose(Expose {
            ports: s(&["443", "80/tcp", "9090"])
        })
    );
    assert_eq!(
        one("VOLUME /a /b"),
        Instruction::Volume(Volume {
            volumes: s(&["/a", "/b"])
        })
    );
    assert_eq!(
        one("VOLUME [\"/a b\"]"),
        Instruction::Volume(Volume {
            volumes: s(&["/a b"])
        })
    );
    assert_eq!(
        one("SHELL [\"pwsh\", \"-c\"]"),
        Instruction::Shell(Shell {
            shell: s(&["pwsh", "-c"])
        })
    );
    assert_eq!(
        one("onbuild  copy . /app"),
        Instruction::Onbuild(Onbuild {
            expression: "copy . /app".into()
        })
    );
    let Instruction::Healthcheck(h) = one("HEALTHCHECK --interval=1m30s --start-interval=0s --start-period=1.5s CMD curl -f http://x/ || exit 1") else {
        panic!()
    };
    assert_eq!(
        h,
        Healthcheck {
            test: s(&["CMD-SHELL", "curl -f http://x/ || exit 1"]),
            interval: 90_000_000_000,
            timeout: 0,
            start_period: 1_500_000_000,
            start_interval: 0,
            retries: 0
        }
    );
    let df = ok("FROM a AS Build\nFROM b as x.y-z_1\n");
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[1].name.as_deref(), Some("x.y-z_1"));
    assert_eq!(df.stage_by_name("BUILD"), Some(0));

    let cases = [
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("USER", "USER requires exactly one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ("VOLUME [\" \"]", "VOLUME specified can not be an empty string"),
        ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
        ("SHELL []", "SHELL requires at least one argument"),
        ("COPY a", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("ADD a", "ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK FOO x", "Unknown type \"FOO\" in HEALTHCHECK (try CMD)"),
        ("HEALTHCHECK --interval=50ns CMD x", "Interval \"interval\" cannot be less than 1ms"),
        ("HEALTHCHECK --timeout=abc CMD x", "time: invalid duration \"abc\""),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD y", "strconv.ParseInt: parsing \"x\": invalid syntax"),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("onbuild maintainer x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("FROM a AS 1x", "invalid name for build stage: \"1x\", name can't start with a number or contain symbols"),
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM", "FROM requires either one or three arguments"),
        ("RUNN x", "unknown instruction: RUNN (did you mean RUN?)"),
        ("XYZZY", "unknown instruction: XYZZY"),
        ("foo bar", "unknown instruction: foo (did you mean from?)"),
    ];
    for (line, want) in cases {
        assert_eq!(
            err(&format!("FROM scratch\n{line}\n")),
            format!("Dockerfile:2: {want}"),
            "{line}"
        );
    }
}

#[test]
fn file_level_errors_and_lines() {
    assert_eq!(err(""), "Dockerfile:1: file with no instructions");
    assert_eq!(
        err("# only\n\n# comments\n"),
        "Dockerfile:3: file with no instructions"
    );
    assert_eq!(
        err("RUN true\nFROM scratch\n"),
        "Dockerfile:1: no build stage in current context"
    );
    assert_eq!(
        err("ARG A=1\nARG B\n"),
        "Dockerfile:2: dockerfile contains no stages to build"
    );
    assert_eq!(
        err("FROM x\nRUN a \\\n  b \\\n  c\nFOO\n"),
        "Dockerfile:5: unknown instruction: FOO (did you mean FROM?)"
    );
    // Line-level errors are found before instruction errors, like BuildKit.
    assert_eq!(
        err("FROM x\nFOO\nRUN <<EOF\n"),
        "Dockerfile:3: unterminated heredoc"
    );
    let long = format!("FROM scratch\nLABEL x={}\n", "a".repeat(70_000));
    assert_eq!(
        err(&long),
        "Dockerfile:2: dockerfile line greater than max allowed size of 65535"
    );
    let e = parse("FROM x\nBAD\n", "sub/Containerfile").unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.end_line),
        ("sub/Containerfile", 2, 2)
    );
    let e = parse_bytes(b"FROM x\nRUN \xff\n", "Dockerfile", ParseOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:2: invalid UTF-8 in Dockerfile");
    assert_eq!(
        parse_bytes(b"FROM x\n", "Dockerfile", ParseOptions::default())
            .unwrap()
            .stages[0]
            .from
            .image,
        "x"
    );
}

#[test]
fn meta_args_and_stage_graph() {
    let text = "ARG BASE=alpine\nARG TAG=3.19 OTHER=${BASE}-x\nFROM ${BASE}:${TAG} AS Base\nFROM base AS build\nCOPY --from=0 /x /y\nRUN --mount=type=cache,target=/c --mount=from=base,target=/b true\nFROM scratch AS final\nCOPY --from=build /a /a\nCOPY --from=busybox:latest /bin/sh /sh\nFROM final\nFROM BASE\n";
    let df = ok(text);
    assert_eq!(df.meta_args.len(), 2);
    assert_eq!(df.meta_args[1].line, 2);
    let none = BTreeMap::new();
    let meta = df.meta_env(&EnvList::new(), &none).unwrap();
    assert_eq!(
        ok("ARG A=${B:?unset}\nFROM x\n")
            .meta_env(&EnvList::new(), &none)
            .unwrap_err()
            .to_string(),
        "Dockerfile:1: failed to process \"${B:?unset}\": B: unset"
    );
    assert_eq!(
        meta.to_list(),
        s(&["BASE=alpine", "TAG=3.19", "OTHER=alpine-x"])
    );
    let mut build_args = BTreeMap::new();
    build_args.insert("TAG".to_string(), "edge".to_string());
    let predefined = EnvList::from_list(["TARGETARCH=amd64"]);
    let meta2 = df.meta_env(&predefined, &build_args).unwrap();
    assert_eq!(
        meta2.to_list(),
        s(&[
            "TARGETARCH=amd64",
            "BASE=alpine",
            "TAG=edge",
            "OTHER=alpine-x"
        ])
    );

    let g = StageGraph::new(&df, &meta).unwrap();
    assert_eq!(g.len(), 5);
    assert_eq!(g.from_image(0), "alpine:3.19");
    assert_eq!(g.base(0), &StageRef::Image("alpine:3.19".into()));
    assert_eq!(g.base(1), &StageRef::Stage(0));
    // BuildKit matches FROM against earlier stage names as written.
    assert_eq!(g.base(4), &StageRef::Image("BASE".into()));
    assert_eq!(
        g.references(1),
        vec![
            StageRef::Stage(0),
            StageRef::Image("scratch".into()),
            StageRef::Stage(0)
        ]
    );
    assert_eq!(
        g.references(2),
        vec![StageRef::Stage(1), StageRef::Image("busybox:latest".into())]
    );
    assert_eq!(g.base(3), &StageRef::Stage(2));
    assert_eq!(g.target(None).unwrap(), 4);
    assert_eq!(g.target(Some("FINAL")).unwrap(), 2);
    assert_eq!(
        g.dependencies(3).unwrap().into_iter().collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        g.dependencies(4).unwrap().into_iter().collect::<Vec<_>>(),
        vec![4]
    );
    // Stage 0 is the base of 1 and copied from by 1; 1 is the base of nothing but copied
    // from by 2; 2 is the base of 3.
    let deps = g.dependencies(3).unwrap();
    assert_eq!(
        g.last_users(&deps, true),
        [Some(1), Some(2), Some(3), None, None]
    );
    assert_eq!(
        g.last_users(&deps, false),
        [Some(1), None, Some(3), None, None]
    );
    assert_eq!(
        g.images(3).unwrap().into_iter().collect::<Vec<_>>(),
        s(&["alpine:3.19", "busybox:latest"])
    );
    assert_eq!(
        g.target(Some("nope")).unwrap_err().to_string(),
        "target stage \"nope\" could not be found (stages: base, build, final)"
    );
    let g2 = StageGraph::new(&df, &meta2).unwrap();
    assert_eq!(g2.from_image(0), "alpine:edge");

    let df = ok("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\n");
    let g = StageGraph::new(&df, &NoEnv).unwrap();
    assert_eq!(
        g.dependencies(0).unwrap_err().to_string(),
        "Dockerfile:2: cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
    );
    assert!(g.dependencies(1).is_ok());
    let df = ok("FROM scratch AS a\nRUN --mount=from=b,target=/m true\nFROM scratch AS b\n");
    let g = StageGraph::new(&df, &NoEnv).unwrap();
    assert_eq!(
        g.dependencies(0).unwrap_err().to_string(),
        "Dockerfile:2: cannot mount from stage \"b\" to \"/m\", stage needs to be defined before current command"
    );

    let graph_err = |text: &str| StageGraph::new(&ok(text), &NoEnv).unwrap_err().to_string();
    assert_eq!(
        graph_err("FROM scratch AS a\nCOPY --from=b x y\nFROM scratch AS b\nCOPY --from=a x y\n"),
        "Dockerfile:4: circular dependency detected on stage: a"
    );
    assert_eq!(
        graph_err("FROM scratch\nCOPY --from=5 a b\n"),
        "Dockerfile:2: invalid stage index 5"
    );
    assert_eq!(
        graph_err("FROM scratch\nCOPY --from=-1 a b\n"),
        "Dockerfile:2: invalid stage index -1"
    );
    assert_eq!(
        graph_err("ARG X\nFROM $X\n"),
        "Dockerfile:2: base name ($X) should not be blank"
    );
    assert_eq!(
        graph_err("FROM --platform=$P scratch\n"),
        "Dockerfile:1: empty platform value from expression $P"
    );
    assert_eq!(
        ok("FROM scratch\nCOPY --from=+0 a b\n").stages[0]
            .commands
            .len(),
        1,
    );
}

#[test]
fn run_command_args_like_dispatch() {
    let sh = s(&["/bin/sh", "-c"]);
    let args = |text: &str| match one(text) {
        Instruction::Run(r) => r.command_args(&sh).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(args("RUN echo hi").args, s(&["/bin/sh", "-c", "echo hi"]));
    assert_eq!(args("RUN [\"echo\", \"hi\"]").args, s(&["echo", "hi"]));
    let a = args("RUN <<-EOF\n\techo a\n\techo b\n\tEOF");
    assert_eq!(a.args, s(&["/bin/sh", "-c", "echo a\necho b\n"]));
    assert_eq!(
        (a.script, a.name_suffix.as_deref()),
        (None, Some(" (echo a...)"))
    );
    let a = args("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF");
    assert_eq!(a.args, s(&["/bin/sh", "-c", "/dev/pipes/EOF"]));
    assert_eq!(
        a.script,
        Some(InlineScript {
            name: "EOF".into(),
            data: "#!/usr/bin/env python3\nprint(1)\n".into()
        })
    );
    let a = args("RUN cat <<A <<-B > /f\na\nA\n\tb\n\tB");
    assert_eq!(
        a.args,
        s(&["/bin/sh", "-c", "cat <<A <<-B > /f\na\nA\n\tb\nB"])
    );
    assert_eq!(a.name_suffix, None);
}
