//! The plan: which steps of a build kiln does itself and which need BuildKit, and why.
//!
//! Made from the parsed Dockerfile before anything is built, so `kiln build --dry` needs
//! no build. Only the stages the target needs are planned, like BuildKit only builds those.
//! Values are expanded the way BuildKit does at dispatch (build args, ARG defaults, ENV), as
//! far as that is known without base images: a base image's ENV is not, so a mount type or an
//! ADD source spelled with such a variable is classified from what is known.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kiln_dockerfile::{
    Dockerfile, EnvList, Expanded, Instruction, ParseOptions, StageGraph, StageRef,
};

use crate::rules::{matching, Feature, MountFrom, Rule};
use crate::Error;

/// A reason for BuildKit: the rule and what it matched.
#[derive(Clone, Debug)]
pub struct Need {
    pub rule: &'static Rule,
    /// The matched feature as written (`--mount=type=cache,target=/c`, a URL, ...).
    pub feature: String,
}

impl Need {
    /// `a cache mount (--mount=type=cache,target=/c): its content persists ... [run-mount-cache]`
    pub fn reason(&self) -> String {
        format!(
            "{} ({}): {} [{}]",
            self.rule.what, self.feature, self.rule.why, self.rule.id
        )
    }
}

/// One line of the Dockerfile the plan covers: a directive, a FROM or an instruction.
#[derive(Clone, Debug)]
pub struct Step {
    /// 1-based line.
    pub line: usize,
    /// The instruction text (continuations joined).
    pub text: String,
    /// Why BuildKit must do this step; empty for a native step.
    pub needs: Vec<Need>,
}

impl Step {
    pub fn is_native(&self) -> bool {
        self.needs.is_empty()
    }

    /// The first line of the text, at most 72 characters.
    fn short_text(&self) -> String {
        let first = self.text.lines().next().unwrap_or_default();
        if first.chars().count() > 72 {
            let cut: String = first.chars().take(71).collect();
            format!("{cut}…")
        } else if self.text.contains('\n') {
            format!("{first} …")
        } else {
            first.to_string()
        }
    }
}

/// The plan of a build.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The Dockerfile's name for messages.
    pub file: String,
    /// Needs that come from the build's arguments rather than a line.
    pub arguments: Vec<Need>,
    /// The planned lines, in file order.
    pub steps: Vec<Step>,
    /// kiln's parser error, when only the frontend named by a `# syntax=` directive can
    /// read the file (the steps then hold just the directive).
    pub unparsed: Option<String>,
    /// The images (not stages) the target pulls, as written after meta-arg expansion.
    pub images: Vec<String>,
}

impl Plan {
    /// Whether any step (or argument) needs BuildKit.
    pub fn needs_buildkit(&self) -> bool {
        self.buildkit_steps() > 0
    }

    /// How many steps need BuildKit (build arguments that need it count as one each).
    pub fn buildkit_steps(&self) -> usize {
        self.arguments.len() + self.steps.iter().filter(|s| !s.is_native()).count()
    }

    /// One line per reason: `Dockerfile:3: RUN ...: a cache mount (...): ... [rule]`.
    pub fn reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .arguments
            .iter()
            .map(|n| format!("build arguments: {}", n.reason()))
            .collect();
        for s in &self.steps {
            for n in &s.needs {
                out.push(format!(
                    "{}:{}: {}: {}",
                    self.file,
                    s.line,
                    s.short_text(),
                    n.reason()
                ));
            }
        }
        out
    }

    /// The plan as `--dry` prints it: one line per step, native or BuildKit and why.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let width = self
            .steps
            .iter()
            .map(|s| format!("{}:{}", self.file, s.line).len())
            .max()
            .unwrap_or(0);
        for n in &self.arguments {
            let _ = writeln!(
                out,
                "{:width$}  BuildKit  {}  <- {}",
                "(arguments)",
                n.feature,
                n.reason()
            );
        }
        for s in &self.steps {
            let at = format!("{}:{}", self.file, s.line);
            if s.is_native() {
                let _ = writeln!(out, "{at:width$}  native    {}", s.short_text());
            } else {
                let why: Vec<String> = s.needs.iter().map(Need::reason).collect();
                let _ = writeln!(
                    out,
                    "{at:width$}  BuildKit  {}  <- {}",
                    s.short_text(),
                    why.join("; ")
                );
            }
        }
        if let Some(e) = &self.unparsed {
            let _ = writeln!(
                out,
                "(kiln cannot read the rest of the file itself: {e}; the frontend image will)"
            );
        }
        out
    }
}

/// A plan and, when kiln's parser (with BuildKit's built-in frontend's rules) read the file,
/// the Dockerfile to build natively.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    /// `None` when the file only parses with the labs syntax or not at all; the plan then
    /// needs BuildKit because of its `# syntax=` directive.
    pub dockerfile: Option<Dockerfile>,
}

/// Plans the build of `target` (the last stage if `None`) of the Dockerfile `text`.
///
/// A file that kiln cannot parse is an error unless it names another frontend with
/// `# syntax=`: that frontend may accept syntax BuildKit's built-in one (and kiln) does not,
/// so the plan then says BuildKit and carries kiln's parser error along.
pub fn plan(
    text: &[u8],
    file_name: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Planned, Error> {
    let (df, native) = match kiln_dockerfile::parse_bytes(text, file_name, ParseOptions::default())
    {
        Ok(df) => (df, true),
        Err(e) => {
            let Some((line, value)) = syntax_directive(text) else {
                return Err(e.into());
            };
            let labs = ParseOptions { labs: true };
            match kiln_dockerfile::parse_bytes(text, file_name, labs) {
                Ok(df) => (df, false),
                Err(_) => {
                    let mut plan = Plan {
                        file: file_name.to_string(),
                        arguments: argument_needs(build_args),
                        steps: Vec::new(),
                        unparsed: Some(e.to_string()),
                        images: Vec::new(),
                    };
                    plan.steps.push(directive_step(line, "syntax", &value));
                    return Ok(Planned {
                        plan,
                        dockerfile: None,
                    });
                }
            }
        }
    };
    let plan = classify(&df, build_args, target)?;
    Ok(Planned {
        plan,
        dockerfile: native.then_some(df),
    })
}

fn directive_step(line: usize, name: &str, value: &str) -> Step {
    let feature = Feature::Directive { name, value };
    Step {
        line,
        text: format!("# {name}={value}"),
        needs: needs_of(&[feature]),
    }
}

fn needs_of(features: &[Feature<'_>]) -> Vec<Need> {
    features
        .iter()
        .flat_map(|f| {
            matching(f).map(|rule| Need {
                rule,
                feature: f.describe(),
            })
        })
        .collect()
}

fn argument_needs(build_args: &BTreeMap<String, String>) -> Vec<Need> {
    let features: Vec<Feature<'_>> = build_args
        .iter()
        .map(|(k, v)| Feature::BuildArg { key: k, value: v })
        .collect();
    needs_of(&features)
}

/// The `# syntax=` directive of a file kiln's parser rejects: (line, value). Directives are
/// the `# key=value` lines at the very top; the first other line ends them.
fn syntax_directive(text: &[u8]) -> Option<(usize, String)> {
    let text = String::from_utf8_lossy(text);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    for (i, line) in text.lines().enumerate() {
        let rest = line.trim().strip_prefix('#')?;
        let (key, value) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        if key.eq_ignore_ascii_case("syntax") {
            return Some((i + 1, value.trim().to_string()));
        }
    }
    None
}

/// Classifies every line the target needs.
pub fn classify(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Plan, Error> {
    let meta = df.meta_env(&EnvList::new(), build_args)?;
    let graph = StageGraph::new(df, &meta)?;
    let target = graph.target(target)?;
    let needed = graph.dependencies(target)?;
    let lex = df.lexer();
    let mut steps: Vec<Step> = df
        .directives
        .iter()
        .map(|d| directive_step(d.line, &d.name, &d.value))
        .collect();
    // ENV values per built stage: a stage built FROM another one inherits them. The last
    // stage built on a stage takes its values instead of copying them (a chain of stages
    // would otherwise hold a copy per stage: memory quadratic in the chain's length).
    let mut stage_env: Vec<Option<EnvList>> = vec![None; df.stages.len()];
    let last_child = graph.last_users(&needed, false);
    for &i in &needed {
        let stage = &df.stages[i];
        steps.push(Step {
            line: stage.line,
            text: stage.original.clone(),
            needs: Vec::new(),
        });
        let mut env_only = match graph.base(i) {
            StageRef::Stage(j) if last_child[*j] == Some(i) => {
                stage_env[*j].take().unwrap_or_default()
            }
            StageRef::Stage(j) => stage_env[*j].clone().unwrap_or_default(),
            StageRef::Image(_) => EnvList::new(),
        };
        // ARG values are seen by this stage only: kept apart, in a copy made at the first ARG.
        let mut with_args: Option<EnvList> = None;
        for c in &stage.commands {
            let env = with_args.as_ref().unwrap_or(&env_only);
            let mut features = Vec::new();
            let mut mounts = Vec::new();
            let mut sources: Vec<(String, bool)> = Vec::new();
            match &c.instruction {
                Instruction::Arg(a) => {
                    let vars = with_args.get_or_insert_with(|| env_only.clone());
                    for def in &a.args {
                        if let Ok(Some(v)) = def.resolve(&lex, vars, build_args, &meta) {
                            vars.set(&def.key, &v);
                        }
                    }
                }
                Instruction::Env(_) => {
                    if let Ok(Expanded::Env(e)) = c.instruction.expand(&lex, env) {
                        for kv in &e.vars {
                            if let Some(vars) = with_args.as_mut() {
                                vars.set(&kv.key, &kv.value);
                            }
                            env_only.set(&kv.key, &kv.value);
                        }
                    }
                }
                Instruction::Run(r) => {
                    if r.security == kiln_dockerfile::Security::Insecure {
                        features.push(Feature::RunInsecure);
                    }
                    // A mount that does not expand is the native build's error to report.
                    mounts = r.expand_mounts(&lex, env).unwrap_or_default();
                }
                Instruction::Add(a) => {
                    let expanded = match c.instruction.expand(&lex, env) {
                        Ok(Expanded::Add(x)) => x,
                        _ => a.clone(),
                    };
                    let checksum = expanded.checksum.is_some();
                    sources = expanded.srcs.into_iter().map(|s| (s, checksum)).collect();
                    if !a.exclude.is_empty() {
                        features.push(Feature::Exclude);
                    }
                }
                Instruction::Copy(cp) => {
                    if cp.parents {
                        features.push(Feature::CopyParents);
                    }
                    if !cp.exclude.is_empty() {
                        features.push(Feature::Exclude);
                    }
                }
                _ => {}
            }
            for m in &mounts {
                let from = match &m.from {
                    None => MountFrom::Context,
                    Some(f) if is_stage(df, f) => MountFrom::Stage,
                    Some(_) => MountFrom::Image,
                };
                features.push(Feature::RunMount { mount: m, from });
            }
            for (src, checksum) in &sources {
                features.push(Feature::AddSource {
                    src,
                    checksum: *checksum,
                });
            }
            steps.push(Step {
                line: c.line,
                text: c.original.clone(),
                needs: needs_of(&features),
            });
        }
        stage_env[i] = Some(env_only);
    }
    steps.sort_by_key(|s| s.line);
    Ok(Plan {
        file: df.file.clone(),
        arguments: argument_needs(build_args),
        steps,
        unparsed: None,
        images: graph.images(target)?.into_iter().collect(),
    })
}

/// `from=` naming a stage (by index or name), as BuildKit resolves it.
fn is_stage(df: &Dockerfile, from: &str) -> bool {
    from.parse::<usize>().is_ok_and(|i| i < df.stages.len()) || df.stage_by_name(from).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(text: &str) -> Plan {
        plan(text.as_bytes(), "Dockerfile", &BTreeMap::new(), None)
            .unwrap()
            .plan
    }

    fn buildkit_lines(p: &Plan) -> Vec<(usize, Vec<&'static str>)> {
        p.steps
            .iter()
            .filter(|s| !s.is_native())
            .map(|s| (s.line, s.needs.iter().map(|n| n.rule.id).collect()))
            .collect()
    }

    #[test]
    fn native_dockerfile() {
        let p = plan_of("FROM scratch\nCOPY a /a\nRUN --mount=type=tmpfs,target=/t true\n");
        assert!(!p.needs_buildkit());
        assert_eq!(p.steps.len(), 3);
        assert_eq!(
            p.render(),
            "Dockerfile:1  native    FROM scratch\n\
             Dockerfile:2  native    COPY a /a\n\
             Dockerfile:3  native    RUN --mount=type=tmpfs,target=/t true\n"
        );
    }

    #[test]
    fn cache_mount_names_its_line() {
        let p = plan_of("FROM busybox\nRUN echo hi\nRUN --mount=type=cache,target=/c true\n");
        assert_eq!(buildkit_lines(&p), [(3, vec!["run-mount-cache"])]);
        let r = p.reasons();
        assert_eq!(r.len(), 1);
        assert!(
            r[0].starts_with(
                "Dockerfile:3: RUN --mount=type=cache,target=/c true: a cache mount \
                 (--mount=type=cache,target=/c): "
            ),
            "{}",
            r[0]
        );
        assert!(p
            .render()
            .contains("Dockerfile:3  BuildKit  RUN --mount=type=cache"));
    }

    #[test]
    fn mount_type_from_a_variable_is_expanded() {
        let p = plan_of("FROM busybox\nARG T=secret\nRUN --mount=type=$T,id=x true\n");
        assert_eq!(buildkit_lines(&p), [(3, vec!["run-mount-secret"])]);
        let args = BTreeMap::from([("T".to_string(), "tmpfs".to_string())]);
        let p = plan(
            b"FROM busybox\nARG T=secret\nRUN --mount=type=$T,target=/t true\n",
            "Dockerfile",
            &args,
            None,
        )
        .unwrap()
        .plan;
        assert!(!p.needs_buildkit(), "{}", p.render());
    }

    #[test]
    fn bind_mounts_from_stages_are_native_from_images_not() {
        let p = plan_of(
            "FROM busybox AS tools\nFROM busybox\n\
             RUN --mount=from=tools,target=/t true\n\
             RUN --mount=from=0,target=/t true\n\
             RUN --mount=from=alpine,target=/t true\n",
        );
        assert_eq!(buildkit_lines(&p), [(5, vec!["run-mount-image"])]);
    }

    #[test]
    fn add_sources() {
        let p = plan_of(
            "FROM scratch\nARG BASE=https://example.com\nADD ${BASE}/a.tar /\n\
             ADD --checksum=sha256:0123456789012345678901234567890123456789012345678901234567890123 https://example.com/b /b\n\
             ADD git@github.com:moby/buildkit.git /src\nADD local.tar.gz /\n",
        );
        assert_eq!(
            buildkit_lines(&p),
            [
                (3, vec!["add-url"]),
                (4, vec!["add-url-checksum"]),
                (5, vec!["add-git"])
            ]
        );
        assert!(p.reasons()[0].contains("(https://example.com/a.tar)"));
    }

    #[test]
    fn only_the_target_stages_are_planned() {
        let text = "FROM busybox AS a\nRUN --mount=type=cache,target=/c true\n\
                    FROM scratch AS b\nCOPY x /x\n";
        let p = plan(text.as_bytes(), "Dockerfile", &BTreeMap::new(), Some("b"))
            .unwrap()
            .plan;
        assert!(!p.needs_buildkit());
        assert_eq!(p.steps.iter().map(|s| s.line).collect::<Vec<_>>(), [3, 4]);
        let p = plan(text.as_bytes(), "Dockerfile", &BTreeMap::new(), Some("a"))
            .unwrap()
            .plan;
        assert!(p.needs_buildkit());
        let e = plan(text.as_bytes(), "Dockerfile", &BTreeMap::new(), Some("zz")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("zz"), "{e}");
    }

    #[test]
    fn syntax_directive_sends_everything_to_buildkit() {
        let planned = plan(
            b"# syntax=docker/dockerfile:1\nFROM scratch\nCOPY a /a\n",
            "Dockerfile",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert!(planned.dockerfile.is_some());
        assert_eq!(
            buildkit_lines(&planned.plan),
            [(1, vec!["syntax-directive"])]
        );
    }

    #[test]
    fn labs_syntax_parses_only_with_a_directive() {
        let labs = "# syntax=docker/dockerfile:1-labs\nFROM scratch\nCOPY --parents a/b /x/\n\
                    COPY --exclude=*.tmp . /y/\n";
        let planned = plan(labs.as_bytes(), "Dockerfile", &BTreeMap::new(), None).unwrap();
        assert!(planned.dockerfile.is_none());
        assert_eq!(
            buildkit_lines(&planned.plan),
            [
                (1, vec!["syntax-directive"]),
                (3, vec!["copy-parents"]),
                (4, vec!["exclude"])
            ]
        );
        // Without the directive BuildKit's built-in frontend rejects the flag, like kiln.
        let e = plan(
            b"FROM scratch\nCOPY --parents a/b /x/\n",
            "Dockerfile",
            &BTreeMap::new(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("Dockerfile:2:"), "{e}");
    }

    #[test]
    fn unparseable_file_with_another_frontend() {
        let planned = plan(
            b"# syntax=example.com/frontend:2\nFROB nicate\n",
            "Dockerfile",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        let p = &planned.plan;
        assert!(planned.dockerfile.is_none());
        assert!(p.needs_buildkit());
        assert_eq!(buildkit_lines(p), [(1, vec!["syntax-directive"])]);
        assert!(p.unparsed.as_deref().unwrap().contains("FROB"));
        assert!(p.render().contains("# syntax=example.com/frontend:2"));
    }

    #[test]
    fn buildkit_syntax_argument() {
        let args = BTreeMap::from([("BUILDKIT_SYNTAX".to_string(), "x/y:1".to_string())]);
        let p = plan(b"FROM scratch\n", "Dockerfile", &args, None)
            .unwrap()
            .plan;
        assert!(p.needs_buildkit());
        assert_eq!(p.arguments.len(), 1);
        assert!(p.reasons()[0].starts_with("build arguments: the BUILDKIT_SYNTAX build argument"));
    }

    #[test]
    fn env_inherited_from_a_stage() {
        let p = plan_of(
            "FROM busybox AS base\nENV KIND=ssh\nFROM base\nRUN --mount=type=${KIND} true\n",
        );
        assert_eq!(buildkit_lines(&p), [(4, vec!["run-mount-ssh"])]);
    }
}
