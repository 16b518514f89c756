//! Dispatch-time expansion of instruction fields, as BuildKit does it.

use kiln_dockerfile::*;
use std::collections::BTreeMap;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn first(text: &str) -> (Dockerfile, Instruction) {
    let df = parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{e}"));
    let i = df.stages[0].commands[0].instruction.clone();
    (df, i)
}

fn expand(text: &str, env: &[&str]) -> Result<Expanded, ExpandError> {
    let (df, i) = first(text);
    i.expand(&df.lexer(), &EnvList::from_list(env))
}

#[test]
fn copy_and_add_fields() {
    let env = [
        "U=app",
        "G=staff",
        "M=0640",
        "SRC=a.txt",
        "D=sub",
        "X=build",
    ];
    let Expanded::Copy(c) = expand(
        "FROM scratch\nCOPY --chown=$U:$G --chmod=${M} --from=$X $SRC 'q'$D /dst/$D/\n",
        &env,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("app:staff"));
    assert_eq!(c.chmod.as_deref(), Some("0640"));
    assert_eq!(
        c.from.as_deref(),
        Some("$X"),
        "BuildKit v0.19.0 does not expand --from"
    );
    // Whitespace splitting happens before expansion, so quotes cannot group words.
    assert_eq!(c.srcs, s(&["a.txt", "qsub"]));
    assert_eq!(c.dest, "/dst/sub/");
    assert_eq!(
        expand("FROM scratch\nCOPY \"b c\" /d\n", &[]).unwrap_err().to_string(),
        "failed to process \"\\\"b\": unexpected end of statement while looking for matching double-quote"
    );
    // An option that expands to nothing is unset.
    let Expanded::Copy(c) = expand("FROM scratch\nCOPY --chown=$NOPE a b\n", &[]).unwrap() else {
        panic!()
    };
    assert_eq!(c.chown, None);

    let Expanded::Add(a) = expand(
        "FROM scratch\nADD --checksum=sha256:${SUM} https://x/$F /opt/\n",
        &["SUM=abc", "F=f.tgz"],
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (a.checksum.as_deref(), a.srcs.clone(), a.dest.as_str()),
        (Some("sha256:abc"), s(&["https://x/f.tgz"]), "/opt/")
    );

    // Heredoc bodies: expanded unless the delimiter was quoted, with `\` as
    // escape and quotes left alone, whatever the Dockerfile's escape.
    let text =
        "# escape=`\nFROM scratch\nCOPY <<EOF <<'RAW' /d/\nv='$A' \\$A `$A\nEOF\nv=$A\nRAW\n";
    let (df, i) = first(text);
    let Expanded::Copy(c) = i.expand(&df.lexer(), &EnvList::from_list(["A=1"])).unwrap() else {
        panic!()
    };
    assert_eq!(c.inline[0].data, "v='1' $A `1\n");
    assert_eq!(c.inline[1].data, "v=$A\n");
}

#[test]
fn simple_fields() {
    let env = [
        "K=name",
        "V=va lue",
        "P=80 443/udp",
        "W=/srv",
        "SIG=TERM",
        "EMPTY=",
    ];
    let Expanded::Env(e) = expand("FROM scratch\nENV $K=\"$V\" other=${K}x\n", &env).unwrap()
    else {
        panic!()
    };
    let pairs: Vec<(String, String)> = e.vars.into_iter().map(|kv| (kv.key, kv.value)).collect();
    assert_eq!(
        pairs,
        vec![
            ("name".into(), "va lue".into()),
            ("other".into(), "namex".into())
        ]
    );
    let Expanded::Expose(x) = expand("FROM scratch\nEXPOSE $P 8080\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(x.ports, s(&["80", "443/udp", "8080"]));
    let Expanded::Workdir(w) = expand("FROM scratch\nWORKDIR $W/app\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(w.path, "/srv/app");
    let Expanded::StopSignal(x) = expand("FROM scratch\nSTOPSIGNAL SIG$SIG\n", &env).unwrap()
    else {
        panic!()
    };
    assert_eq!(x.signal, "SIGTERM");
    let Expanded::User(u) = expand("FROM scratch\nUSER ${K:-x}:${G:-users}\n", &env).unwrap()
    else {
        panic!()
    };
    assert_eq!(u.user, "name:users");
    let Expanded::Volume(v) = expand("FROM scratch\nVOLUME $W /x\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(v.volumes, s(&["/srv", "/x"]));
    assert_eq!(
        expand("FROM scratch\nVOLUME $EMPTY\n", &env)
            .unwrap_err()
            .to_string(),
        "VOLUME specified can not be an empty string"
    );
    assert_eq!(
        expand("FROM scratch\nWORKDIR ${X:?need X}\n", &env)
            .unwrap_err()
            .to_string(),
        "failed to process \"${X:?need X}\": X: need X"
    );
    // Never expanded.
    let Expanded::Cmd(c) = expand("FROM scratch\nCMD echo $K\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(c.cmd, ShellOrExec::Shell("echo $K".into()));
    let Expanded::Run(r) = expand("FROM scratch\nRUN echo $K\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(r.run.cmd, ShellOrExec::Shell("echo $K".into()));
    let Expanded::Shell(x) = expand("FROM scratch\nSHELL [\"$K\"]\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(x.shell, s(&["$K"]));
    let Expanded::Onbuild(o) = expand("FROM scratch\nONBUILD RUN $K\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(o.expression, "RUN $K");
    let Expanded::Arg(a) = expand("FROM scratch\nARG A=$K\n", &env).unwrap() else {
        panic!()
    };
    assert_eq!(a.args[0].default.as_deref(), Some("$K"));
}

#[test]
fn run_mounts() {
    let Expanded::Run(r) = expand(
        "FROM scratch\nRUN --mount=type=$T,target=$D,id=c-$T true\n",
        &["T=cache", "D=/c"],
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(
        (
            r.mounts[0].target.as_deref(),
            r.mounts[0].cache_id.as_deref()
        ),
        (Some("/c"), Some("c-cache"))
    );
    assert_eq!(
        expand("FROM scratch\nRUN --mount=type=$T true\n", &[])
            .unwrap_err()
            .to_string(),
        "unsupported mount type \"\""
    );
    let e = expand("FROM scratch\nRUN --mount=target=${X true\n", &[]).unwrap_err();
    assert!(matches!(e, ExpandError::Lex(_)), "{e:?}");
}

#[test]
fn arg_resolution() {
    let df = parse("FROM scratch\nARG A=${B:-dflt} B C\n", "Dockerfile").unwrap();
    let Instruction::Arg(arg) = &df.stages[0].commands[0].instruction else {
        panic!()
    };
    let lex = df.lexer();
    let meta = EnvList::from_list(["C=from-meta"]);
    let resolve_all = |build: &BTreeMap<String, String>, start: &[&str]| {
        let mut env = EnvList::from_list(start);
        let mut out = Vec::new();
        for d in &arg.args {
            let v = d.resolve(&lex, &env, build, &meta).unwrap();
            if let Some(v) = &v {
                env.set(&d.key, v);
            }
            out.push(v);
        }
        out
    };
    assert_eq!(
        resolve_all(&BTreeMap::new(), &[]),
        vec![Some("dflt".into()), None, Some("from-meta".into())]
    );
    assert_eq!(
        resolve_all(&BTreeMap::new(), &["B=env"]),
        vec![Some("env".into()), None, Some("from-meta".into())]
    );
    let mut build = BTreeMap::new();
    build.insert("A".to_string(), "given".to_string());
    build.insert("B".to_string(), "bb".to_string());
    assert_eq!(
        resolve_all(&build, &[]),
        vec![
            Some("given".into()),
            Some("bb".into()),
            Some("from-meta".into())
        ]
    );
}

#[test]
fn from_expansion() {
    let df = parse(
        "ARG IMG=alpine\nFROM --platform=${P:-linux/amd64} ${IMG}:${TAG:-latest} AS x\n",
        "Dockerfile",
    )
    .unwrap();
    let meta = df.meta_env(&EnvList::new(), &BTreeMap::new()).unwrap();
    let f = df.stages[0].from.expand(&df.lexer(), &meta).unwrap();
    assert_eq!(
        f,
        ExpandedFrom {
            image: "alpine:latest".into(),
            platform: Some("linux/amd64".into())
        }
    );
}
