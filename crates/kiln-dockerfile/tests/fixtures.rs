//! The Dockerfiles of the BuildKit v0.19.0 reference fixtures (copied into
//! testdata/dockerfile/fixtures) parse to the structures BuildKit builds
//! them from, and expand to the values visible in BuildKit's images.

use kiln_dockerfile::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

const BUSYBOX: &str =
    "127.0.0.1:5000/busybox@sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6";

fn fixture(name: &str) -> Dockerfile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/dockerfile/fixtures")
        .join(name)
        .join("Dockerfile");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&text, "Dockerfile").unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn only_stage(df: &Dockerfile) -> &Stage {
    assert_eq!(df.stages.len(), 1);
    &df.stages[0]
}

fn copy(src: &[&str], dest: &str) -> Instruction {
    Instruction::Copy(Copy {
        srcs: s(src),
        inline: vec![],
        dest: dest.into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        exclude: vec![],
    })
}

fn run(cmd: &str) -> Instruction {
    Instruction::Run(Run {
        cmd: ShellOrExec::Shell(cmd.into()),
        heredocs: vec![],
        mounts: vec![],
        network: NetworkMode::Default,
        security: Security::Sandbox,
        flags_used: vec![],
    })
}

fn instructions(st: &Stage) -> Vec<Instruction> {
    st.commands.iter().map(|c| c.instruction.clone()).collect()
}

#[test]
fn scratch_copy() {
    for name in ["scratch-copy", "scratch-copy-sde0"] {
        let df = fixture(name);
        let st = only_stage(&df);
        assert_eq!(
            (st.from.image.as_str(), st.name.as_deref(), st.line),
            ("scratch", None, 1)
        );
        assert_eq!(instructions(st), vec![copy(&["."], "/app/")]);
        assert_eq!(
            (st.commands[0].line, st.commands[0].original.as_str()),
            (2, "COPY . /app/")
        );
    }
    let st = only_stage(&fixture("xattr")).clone();
    assert_eq!(instructions(&st), vec![copy(&["."], "/x/")]);
}

#[test]
fn add_tar() {
    let df = fixture("add-tar");
    let st = only_stage(&df);
    let add = |src: &str, dest: &str| {
        Instruction::Add(Add {
            srcs: s(&[src]),
            inline: vec![],
            dest: dest.into(),
            chown: None,
            chmod: None,
            link: false,
            keep_git_dir: false,
            checksum: None,
            exclude: vec![],
        })
    };
    assert_eq!(
        instructions(st),
        vec![
            add("bundle.tar.gz", "/opt/"),
            add("plain.txt", "/opt/plain.txt")
        ]
    );
}

#[test]
fn busybox_run_and_copy() {
    let df = fixture("busybox-run");
    let st = only_stage(&df);
    assert_eq!(st.from.image, BUSYBOX);
    assert_eq!(
        instructions(st),
        vec![run("echo hello > /hello && mkdir -p /a/b && touch /a/b/c")]
    );

    let df = fixture("busybox-run-ocilayout");
    assert_eq!(only_stage(&df).from.image, "busybox");

    let df = fixture("busybox-copy-run");
    let st = only_stage(&df);
    assert_eq!(
        instructions(st),
        vec![
            copy(&["tool.sh"], "/usr/local/bin/tool.sh"),
            run("chmod 0700 /usr/local/bin/tool.sh && /usr/local/bin/tool.sh > /out.txt"),
        ]
    );

    let df = fixture("busybox-empty-layers");
    let st = only_stage(&df);
    assert_eq!(
        instructions(st),
        vec![
            run("true"),
            run("true"),
            Instruction::Workdir(Workdir {
                path: "/tmp".into()
            }),
            Instruction::Workdir(Workdir { path: "/".into() }),
            run("echo last > /last.txt"),
        ]
    );
}

#[test]
fn busybox_chown_names() {
    let df = fixture("busybox-chown-names");
    let st = only_stage(&df);
    let Instruction::Copy(c) = &st.commands[0].instruction else {
        panic!("not COPY")
    };
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(
        (c.srcs.clone(), c.dest.as_str()),
        (s(&["owned.txt"]), "/home/app/owned.txt")
    );
    assert_eq!(
        st.commands[1].instruction,
        Instruction::User(User { user: "app".into() })
    );
    assert_eq!(
        st.commands[2].instruction,
        Instruction::Workdir(Workdir {
            path: "/home/app/work".into()
        })
    );
    assert_eq!(
        st.commands[3].instruction,
        run("id > /home/app/work/id.txt")
    );
}

#[test]
fn busybox_run_args() {
    let df = fixture("busybox-run-args");
    let st = only_stage(&df);
    let arg = |k: &str, d: Option<&str>| {
        Instruction::Arg(Arg {
            args: vec![ArgDef {
                key: k.into(),
                default: d.map(String::from),
            }],
        })
    };
    assert_eq!(st.commands[0].instruction, arg("FOO", Some("bar")));
    assert_eq!(st.commands[1].instruction, arg("EMPTY", None));
    assert_eq!(
        st.commands[2].instruction,
        Instruction::Env(Env {
            vars: vec![KeyValue {
                key: "E1".into(),
                value: "v1".into(),
                legacy: false
            }]
        })
    );
    assert_eq!(st.commands[3].instruction, run("echo \"$FOO\" > /foo.txt"));
    let Instruction::Run(exec) = &st.commands[4].instruction else {
        panic!()
    };
    assert_eq!(
        exec.cmd,
        ShellOrExec::Exec(s(&["/bin/sh", "-c", "echo exec-form > /exec.txt"]))
    );
    assert_eq!(st.commands[5].instruction, arg("SOURCE_DATE_EPOCH", None));
    assert_eq!(
        st.commands[7].instruction,
        Instruction::Shell(Shell {
            shell: s(&["/bin/sh", "-ec"])
        })
    );
    let Instruction::Run(r) = &st.commands[8].instruction else {
        panic!()
    };
    assert_eq!(r.mounts, s(&["type=tmpfs,target=/scratch"]));
    assert_eq!(r.flags_used, s(&["mount"]));
    assert_eq!(
        r.cmd,
        ShellOrExec::Shell("echo tmp > /scratch/x && echo shell > /shell.txt".into())
    );
    // The shell form runs under the stage's SHELL.
    assert_eq!(
        r.cmd.with_shell(&s(&["/bin/sh", "-ec"])),
        s(&[
            "/bin/sh",
            "-ec",
            "echo tmp > /scratch/x && echo shell > /shell.txt"
        ])
    );
    let mounts = r.expand_mounts(&df.lexer(), &EnvList::new()).unwrap();
    assert_eq!(mounts[0].kind, MountType::Tmpfs);
    assert_eq!(mounts[0].target.as_deref(), Some("/scratch"));
    assert!(!mounts[0].read_only);

    // ARG values as BuildKit resolves them (no build args given).
    let lex = df.lexer();
    let none = BTreeMap::new();
    let mut env = EnvList::new();
    for c in &st.commands[..2] {
        let Instruction::Arg(a) = &c.instruction else {
            panic!()
        };
        for d in &a.args {
            if let Some(v) = d.resolve(&lex, &env, &none, &NoEnv).unwrap() {
                env.set(&d.key, &v);
            }
        }
    }
    assert_eq!(env.to_list(), s(&["FOO=bar"]));
}

#[test]
fn multistage() {
    let df = fixture("multistage");
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[1].name, None);
    assert_eq!(df.stages[1].line, 5);
    let Instruction::Copy(c) = &df.stages[1].commands[0].instruction else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("0"));
    let Instruction::Copy(c) = &df.stages[1].commands[1].instruction else {
        panic!()
    };
    assert_eq!(
        (c.from.as_deref(), c.srcs.clone(), c.dest.as_str()),
        (Some("build"), s(&["/out"]), "/out-all")
    );

    let g = StageGraph::new(&df, &EnvList::new()).unwrap();
    assert_eq!(
        g.references(1),
        vec![StageRef::Stage(0), StageRef::Stage(0)]
    );
    assert_eq!(g.base(1), &StageRef::Image("scratch".into()));
    let t = g.target(None).unwrap();
    assert_eq!(t, 1);
    assert_eq!(
        g.dependencies(t).unwrap().into_iter().collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(g.target(Some("BUILD")).unwrap(), 0);
    assert_eq!(
        g.dependencies(0).unwrap().into_iter().collect::<Vec<_>>(),
        vec![0]
    );
    assert!(g.images(1).unwrap().is_empty());
}

#[test]
fn scratch_meta() {
    let df = fixture("scratch-meta");
    let st = only_stage(&df);
    let lex = df.lexer();
    let kinds: Vec<&str> = st.commands.iter().map(|c| c.instruction.name()).collect();
    assert_eq!(
        kinds,
        [
            "ARG",
            "ARG",
            "MAINTAINER",
            "ENV",
            "ENV",
            "LABEL",
            "LABEL",
            "WORKDIR",
            "COPY",
            "USER",
            "EXPOSE",
            "EXPOSE",
            "VOLUME",
            "STOPSIGNAL",
            "SHELL",
            "HEALTHCHECK",
            "ONBUILD",
            "ENTRYPOINT",
            "CMD"
        ]
    );
    let ins = instructions(st);
    assert_eq!(
        ins[2],
        Instruction::Maintainer(Maintainer {
            maintainer: "Fixture Maintainer <fixtures@example.invalid>".into()
        })
    );
    // The stage environment while dispatching: ARG VERSION=1.2.3 then the ENVs.
    let mut env = EnvList::from_list(["VERSION=1.2.3"]);
    for i in [3, 4] {
        let Expanded::Env(e) = ins[i].expand(&lex, &env).unwrap() else {
            panic!()
        };
        for kv in e.vars {
            env.set(&kv.key, &kv.value);
        }
    }
    assert_eq!(
        env.to_list(),
        s(&[
            "VERSION=1.2.3",
            "APP_HOME=/srv/app",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "GREETING=hello world"
        ])
    );
    let Expanded::Label(l) = ins[5].expand(&lex, &env).unwrap() else {
        panic!()
    };
    let labels: Vec<(String, String)> = l.labels.into_iter().map(|kv| (kv.key, kv.value)).collect();
    assert_eq!(
        labels,
        vec![
            (
                "org.opencontainers.image.title".to_string(),
                "scratch-meta".to_string()
            ),
            ("version".to_string(), "1.2.3".to_string())
        ]
    );
    let Expanded::Label(l) = ins[6].expand(&lex, &env).unwrap() else {
        panic!()
    };
    assert_eq!(l.labels[0].value, "a b c");
    assert_eq!(ins[8], copy(&["hello.txt"], "./"));
    assert_eq!(
        ins[9],
        Instruction::User(User {
            user: "1000:1000".into()
        })
    );
    assert_eq!(
        ins[10],
        Instruction::Expose(Expose {
            ports: s(&["53/udp", "8080/tcp"])
        })
    );
    assert_eq!(
        ins[12],
        Instruction::Volume(Volume {
            volumes: s(&["/data", "/cache"])
        })
    );
    assert_eq!(
        ins[13],
        Instruction::StopSignal(StopSignal {
            signal: "SIGTERM".into()
        })
    );
    assert_eq!(
        ins[15],
        Instruction::Healthcheck(Healthcheck {
            test: s(&["CMD", "/srv/app/run", "--health"]),
            interval: 30_000_000_000,
            timeout: 5_000_000_000,
            start_period: 0,
            start_interval: 0,
            retries: 3,
        })
    );
    assert_eq!(
        ins[16],
        Instruction::Onbuild(Onbuild {
            expression: "RUN echo onbuild".into()
        })
    );
    let Instruction::Entrypoint(e) = &ins[17] else {
        panic!()
    };
    assert_eq!(
        e.config_value(&s(&["/bin/sh", "-ec"])),
        Some(s(&["/srv/app/run"]))
    );
    assert_eq!(
        ins[18],
        Instruction::Cmd(Cmd {
            cmd: ShellOrExec::Exec(s(&["--flag", "value"]))
        })
    );
}

#[test]
fn scratch_copy_dockerignore_matches_buildkit_context() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/dockerfile/fixtures/scratch-copy");
    let m =
        IgnoreMatcher::parse(&std::fs::read_to_string(dir.join("dockerignore")).unwrap()).unwrap();
    assert_eq!(m.patterns(), s(&["ignored", "*.tmp"]));
    // Which context entries ended up in BuildKit's layer (derived from the
    // fixture's context listing and its layer contents).
    let listing = std::fs::read_to_string(dir.join("context-paths.tsv")).unwrap();
    let mut checked = 0;
    for line in listing.lines() {
        let f: Vec<&str> = line.splitn(3, '\t').collect();
        let (is_dir, included, path) = (f[0] == "dir", f[1] == "include", f[2]);
        assert_eq!(!m.is_excluded(path, is_dir), included, "{path}");
        checked += 1;
    }
    assert_eq!(checked, 37);
    assert_eq!(
        m.walk_decision("ignored", true, &MatchInfo::default()).0,
        WalkDecision::SkipDir
    );
}
